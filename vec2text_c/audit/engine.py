"""Where the inversions of an audit run: in this process, or on Ray actors.

A task is a batch of records: ids, stored vectors, documents (or None) and, for the defence
curve, the noise level and the clean vectors. `AuditWorker` holds the loaded model and aligner
and turns a task into result rows. The `local` engine runs one worker in this process; the
`ray` engine runs one per Ray actor, each re-created from the model's name or path (weights are
never pickled) with its C core threads set through OMP_NUM_THREADS before the core loads, so
that workers do not oversubscribe cores. Batches are formed by the driver, the same for both
engines, and results stream back to the driver, which writes them.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

__all__ = ["ModelSpec", "AuditWorker", "load_model", "run_local", "run_ray"]


@dataclass(frozen=True)
class ModelSpec:
    """How a worker re-creates the model: names and paths, never weights."""

    corrector: str = "minilm"
    aligner: str | None = None
    dtype: str = "float32"
    num_steps: int | None = None
    sequence_beam_width: int = 0
    search: dict | None = None
    region: str = "US"


def load_model(name_or_path: str, dtype: str = "float32"):
    """A Corrector from a name ("minilm", "gtr-base", ...), a model folder holding inverter/
    (and corrector/), or an inverter checkpoint folder / repository id."""
    from .. import models

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"corrector: expected a model name or path, got {type(name_or_path).__name__}")
    key = os.fspath(name_or_path)
    if key in models.BUILTIN or key in models.PRETRAINED:
        return models.load_pretrained_corrector(key, dtype=dtype)
    d = Path(key).expanduser()
    if d.is_dir() and (d / "inverter").is_dir():
        return models.load_corrector(d / "inverter", d / "corrector" if (d / "corrector").is_dir() else None,
                                     dtype=dtype)
    if d.exists() and not d.is_dir():
        raise ValueError(f"--corrector {d}: expected a model folder (inverter/, corrector/) or a name, got a file")
    if not d.exists() and ("/" not in key or key.startswith((".", "/", "~"))):
        raise FileNotFoundError(
            f"--corrector {key!r}: not a model name ({', '.join(sorted(models.BUILTIN) + sorted(models.PRETRAINED))}), "
            "nor an existing folder")
    return models.load_pretrained_inverter(key, dtype=dtype)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-8)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-8)
    return np.einsum("nd,nd->n", a.astype(np.float64), b.astype(np.float64)) / (na * nb)


def _compare_form(text: str, lowercase: bool) -> str:
    return " ".join((text.lower() if lowercase else text).split())


class AuditWorker:
    """The loaded model (+ aligner) of one process, and the work on one batch of records."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.corrector = load_model(spec.corrector, spec.dtype)
        self.aligner = None
        if spec.aligner is not None:
            from ..align import load as load_aligner

            self.aligner = load_aligner(spec.aligner)
            if self.aligner.d_out != self.corrector.dim:
                raise ValueError(
                    f"--aligner {spec.aligner}: maps into {self.aligner.d_out} dimensions, but the model "
                    f"{spec.corrector!r} inverts {self.corrector.dim}-dimensional embeddings")
        # what the inverter can recover: an uncased embedder sees (and the model writes) lower case.
        # Asked of the embedder itself: the same vector for a text and its lower-cased form
        probe = self.corrector.embed(["Case Probe For London", "case probe for london"], self.corrector.max_seq_length)
        self.lowercase = bool(np.array_equal(probe[0], probe[1]))

    @property
    def input_dim(self) -> int:
        """The width of the stored vectors this worker takes."""
        return self.aligner.d_in if self.aligner is not None else self.corrector.dim

    def pid(self) -> int:
        """This worker's process id."""
        return os.getpid()

    def run(self, task: dict) -> list[dict]:
        """Result rows for one task (see the module docstring)."""
        from .. import metrics
        from ..api import invert_embeddings
        from .sensitive import recovered_items

        ids, vectors, docs = task["ids"], np.asarray(task["vectors"], dtype=np.float32), task.get("documents")
        noise = task.get("noise")
        finite = np.isfinite(vectors).all(axis=1)
        rows: list[dict] = [{"id": i} for i in ids]
        if noise is not None:
            for r in rows:
                r["noise"] = float(noise)
        for k in np.flatnonzero(~finite):
            rows[k].update(status="error", error="the stored vector contains NaN or infinity; not inverted")
        ok = np.flatnonzero(finite)
        if len(ok) == 0:
            return rows
        x = vectors[ok]
        clean = np.asarray(task["clean"], dtype=np.float32)[ok] if noise is not None else x
        if self.aligner is not None:
            x = self.aligner.transform(x).astype(np.float32)
            clean = self.aligner.transform(clean).astype(np.float32) if noise is not None else x
        s = self.spec
        texts = invert_embeddings(x, self.corrector, s.num_steps, s.sequence_beam_width, search=s.search,
                                  progress=False)
        cos = _cosines(self.corrector.embed(texts, self.corrector.max_seq_length), clean)
        have_docs = docs is not None and any(docs[k] is not None for k in ok)
        if have_docs:
            refs = [docs[k] if docs[k] is not None else "" for k in ok]
            p = [_compare_form(t, self.lowercase) for t in texts]
            r = [_compare_form(t, self.lowercase) for t in refs]
            bleu = metrics._bleu_scores(p, r)
            f1 = metrics._token_f1_scores(p, r)
        for j, k in enumerate(ok):
            row = rows[k]
            row.update(status="ok", recovered=texts[j], cosine=round(float(cos[j]), 6))
            if have_docs and docs[k] is not None:
                row.update(lowercased=self.lowercase, bleu=round(float(bleu[j]), 4), token_f1=round(float(f1[j]), 6),
                           exact=p[j] == r[j])
                if noise is None:
                    row["document"] = docs[k]
                    row["sensitive"] = recovered_items(docs[k], texts[j], s.region)
        return rows


def run_local(worker: AuditWorker, tasks: Iterable[dict], on_rows: Callable[[list[dict]], None]) -> None:
    """Run every task in this process, in order, handing each batch's rows to `on_rows`."""
    for task in tasks:
        on_rows(worker.run(task))


def _shadow_package() -> Path | None:
    """The current directory's vec2text_c folder when it is not the package this process runs.

    Ray adds the directory a driver was started from to the front of every worker's sys.path,
    so a source checkout there (a repository root without a built C core, another version)
    would be imported by the workers instead of the installed package."""
    here = Path.cwd() / "vec2text_c"
    mine = Path(__file__).resolve().parents[1]
    if here.is_dir() and here.resolve() != mine:
        return here
    return None


@contextlib.contextmanager
def _cwd_without_shadow():
    """Run the block (Ray's start or connection) from the directory that holds this process's
    vec2text_c when the current one would shadow it on the workers (see `_shadow_package`), so
    that the workers put the right package first; elsewhere, do nothing. (Not a temporary
    directory: a local instance's processes keep the directory they were started in.)"""
    if _shadow_package() is None:
        yield
        return
    old = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[2])
    try:
        yield
    finally:
        os.chdir(old)


def run_ray(spec: ModelSpec, tasks: list[dict], on_rows: Callable[[list[dict]], None], *, workers: int | None = None,
            threads: int = 1, address: str | None = None) -> dict:
    """Run the tasks on Ray actors, handing each batch's rows to `on_rows` as it finishes.

    address: an existing cluster ("auto", "ray://host:10001"); None starts a local Ray instance
    with `workers * threads` CPUs, shut down afterwards. workers: actors (default: the cluster's
    CPUs // threads). An actor whose process dies is restarted and its batch retried; rows of a
    batch that reaches the driver twice are written once (the results file keys them)."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"--engine ray needs the `ray` package (pip install 'vec2text_c[audit]'): {e}") from None
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected an int >= 1 (C core threads per worker), got {threads!r}")
    import time

    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        with _cwd_without_shadow():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                n = workers if workers is not None else max(1, (os.cpu_count() or 1) // threads)
                ray.init(num_cpus=n * threads, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
        actor_cls = ray.remote(AuditWorker).options(
            num_cpus=threads, max_restarts=-1, max_task_retries=-1,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}})
        spec_dict = asdict(spec)
        actors = [actor_cls.remote(ModelSpec(**spec_dict)) for _ in range(min(workers, max(1, len(tasks))))]
        try:
            ray.get([a.pid.remote() for a in actors])  # every actor has loaded its model
        except ray.exceptions.RayError as e:
            shadow = _shadow_package()
            if shadow is not None and not started:
                raise RuntimeError(
                    f"the Ray workers could not load vec2text_c: Ray puts the directory it was started from "
                    f"({shadow.parent}) first on its workers' path, and that directory holds another vec2text_c "
                    f"folder ({shadow}) than this process's; call ray.init() from another directory, or let the "
                    f"audit start Ray itself: {e}") from None
            raise
        t_ready = time.perf_counter()
        queue = list(reversed(tasks))
        pending: dict = {}
        for a in actors:  # two batches in flight per actor: the next one waits in its queue
            for _ in range(2):
                if queue:
                    pending[a.run.remote(queue.pop())] = a
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            actor = pending.pop(ref)
            on_rows(ray.get(ref))
            if queue:
                pending[actor.run.remote(queue.pop())] = actor
        return {"workers": len(actors), "threads_per_worker": threads,
                "startup_seconds": round(t_ready - t0, 3), "work_seconds": round(time.perf_counter() - t_ready, 3)}
    finally:
        for a in locals().get("actors", []):
            ray.kill(a)
        if started:
            ray.shutdown()
