"""The `vec2text-c` command line.

    demo     embed a few built-in sentences, invert them with the shipped model and print
             every correction round with its cosine
    invert   embeddings (.npy) or texts (.txt / .jsonl) -> JSONL of recovered texts
    embed    texts -> .npy
    eval     texts -> BLEU / token F1 / exact match / cosine table over steps x beam widths
    train    train an inverter + corrector for an embedder on a corpus (the [train] extra)
    audit    audit a vector store (Chroma, LanceDB, .npy / .parquet) for leakage: results, report.html,
             summary.json (the [audit] extra)

Errors end with one line on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"

DEMO_SENTENCES = [
    "The cat sat quietly on the warm windowsill.",
    "Interest rates rose again after the central bank meeting.",
    "She booked a flight to Lisbon for the first week of June.",
    "Text embeddings can leak the text they were computed from.",
]


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _read_texts(path: Path, field: str) -> list[str]:
    if not path.is_file():
        raise CliError(f"{path}: file not found")
    if path.suffix == ".npy":
        raise CliError(f"{path}: a .npy file holds embeddings; this command reads texts (.txt: one per line, .jsonl)")
    try:
        return _read_texts_from(path, field)
    except UnicodeDecodeError as e:
        raise CliError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason}); expected one text per line, "
                       "or JSON lines") from None


def _read_texts_from(path: Path, field: str) -> list[str]:
    texts: list[str] = []
    with open(path, encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CliError(f"{path}:{n}: not valid JSON ({e.msg})") from None
                if isinstance(obj, str):
                    texts.append(obj)
                elif isinstance(obj, dict) and isinstance(obj.get(field), str):
                    texts.append(obj[field])
                else:
                    raise CliError(f"{path}:{n}: expected a JSON string or an object with a string field {field!r}")
        else:
            texts = [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        raise CliError(f"{path}: no texts found (empty file)")
    return texts


def _read_embeddings(path: Path, dim: int):
    import numpy as np

    if not path.is_file():
        raise CliError(f"{path}: file not found")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise CliError(f"{path}: not a .npy file (it does not start with the NumPy magic bytes; a text file? "
                       "texts go in a .txt or .jsonl file)")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for a bad file
        raise CliError(f"{path}: not a readable .npy array ({e})") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
        raise CliError(f"{path}: expected a floating-point array, got dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise CliError(f"{path}: expected embeddings of shape [N, {dim}] (or [{dim}]) for this model, got {list(arr.shape)}")
    if arr.shape[0] == 0:
        raise CliError(f"{path}: no embeddings (empty array)")
    if not np.isfinite(arr).all():
        raise CliError(f"{path}: the embeddings contain NaN or infinity")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _corrector(args):
    from . import load_corrector, load_pretrained_corrector

    if getattr(args, "inverter", None) or getattr(args, "corrector", None):
        if not args.inverter:
            raise CliError("--corrector needs --inverter: give the inverter checkpoint too")
        return load_corrector(args.inverter, args.corrector, dtype=args.dtype)  # --inverter alone: inverter-only
    return load_pretrained_corrector(args.model, dtype=args.dtype)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="minilm", help="a shipped or pretrained model name (default: minilm)")
    g.add_argument("--inverter", help="an inverter checkpoint folder or repository id (instead of --model; alone: an inverter-only model)")
    g.add_argument("--corrector", help="a corrector checkpoint folder or repository id (with --inverter)")
    g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="T5 matmul weights: float32 (exact) or bfloat16 (faster)")


def _cos(a, b):
    import numpy as np

    na = np.maximum(np.linalg.norm(a, axis=1), 1e-8)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-8)
    return (a * b).sum(1) / (na * nb)


def cmd_demo(args: argparse.Namespace) -> None:
    from . import invert_embeddings

    from .api import Search

    corr = _corrector(args)
    E = corr.embed(DEMO_SENTENCES, 128)
    print(f"model: {corr.inverter_checkpoint.path.parent} (embedder {corr.embedder_name}, dim {corr.dim})")
    search = _search_arg(args)
    if corr.has_corrector:
        steps, beam = (5 if args.steps is None else args.steps), (4 if args.beam is None else args.beam)
        print(f"inverting {len(DEMO_SENTENCES)} embeddings: {steps} correction steps, sequence beam width {beam}\n")
    else:
        if args.steps is not None or args.beam:
            raise CliError("--steps / --beam: this model has no corrector (an inverter alone); leave them out")
        steps, beam = None, 0
        search = search or Search(candidates=0)
        print(f"inverting {len(DEMO_SENTENCES)} embeddings: this model is an inverter without a corrector, so its "
              f"text is refined by local edits (search: up to {search.edit_rounds} edits, top {search.edit_top_k} "
              "proposals)\n")
    rounds: list[tuple[int, list[str], list[float]]] = []
    final = invert_embeddings(E, corr, num_steps=steps, sequence_beam_width=beam, search=search,
                              max_length=_max_length_arg(args),
                              callback=lambda r, texts, cos: rounds.append((r, list(texts), [float(c) for c in cos])))
    fcos = _cos(corr.embed(final, corr.max_seq_length), E) if search is not None else None
    for i, original in enumerate(DEMO_SENTENCES):
        print(f"original   {original}")
        for r, texts, cos in rounds:
            label = "inverter" if r == 0 else f"round {r}"
            print(f"  {label:>9}  cos {cos[i]:.4f}  {texts[i]}")
        if fcos is not None:
            print(f"  {'search':>9}  cos {fcos[i]:.4f}  {final[i]}")
        print()
    _print_cosine_scale(corr)


def _print_cosine_scale(corr) -> None:
    """What a cosine means for this model: the calibration table measured when the model was
    evaluated (calibration.json beside its checkpoints), when there is one."""
    p = Path(corr.inverter_checkpoint.path).parent / "calibration.json"
    if not p.is_file():
        return
    cal = json.loads(p.read_text())
    print(f"What the cosine means here ({cal['source']}):")
    for b in cal["bins"]:
        print(f"  cos {b['low']:.2f}-{b['high']:.2f}: token F1 {b['token_f1']:.2f}, e.g. {b['example']!r}")


def cmd_invert(args: argparse.Namespace) -> None:
    import numpy as np

    from . import invert_embeddings

    src = Path(args.input)
    _writable(args.output, "-o")
    corr = _corrector(args)
    originals = None
    if src.suffix == ".npy":
        E = _read_embeddings(src, corr.dim)
    elif src.suffix in (".txt", ".jsonl"):
        originals = _read_texts(src, args.field)
        E = corr.embed(originals, 128)
    else:
        raise CliError(f"{src}: expected a .npy file of embeddings or a .txt / .jsonl file of texts")
    if args.steps is None:
        steps = 20 if corr.has_corrector else None
    else:
        steps = None if args.steps < 0 else args.steps
    beam = (4 if steps is not None else 0) if args.beam is None else args.beam
    if steps is None and beam:
        raise CliError("--beam needs correction steps (--steps >= 0)")
    if steps is not None and not corr.has_corrector:
        raise CliError(f"--steps {steps}: this model has no corrector (an inverter alone); use --steps -1 or leave it "
                       "out, and --search to refine the inverter's text")
    history: dict[int, tuple[list[str], list[float]]] = {}
    cb = (lambda r, texts, cos: history.__setitem__(r, (list(texts), [float(c) for c in cos]))) if args.rounds else None
    texts = invert_embeddings(E, corr, num_steps=steps, sequence_beam_width=beam, keep_best=args.keep_best,
                              stop_at_cosine=args.stop_at_cosine, progress=not args.quiet, callback=cb,
                              batch_size=args.batch_size, search=_search_arg(args),
                              max_length=_max_length_arg(args))
    cos = _cos(corr.embed(texts, corr.max_seq_length), E)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for i, (t, c) in enumerate(zip(texts, cos.tolist())):
            rec = {"text": t, "cosine": round(c, 6)}
            if originals is not None:
                rec["original"] = originals[i]
            if cb is not None:
                rec["rounds"] = [{"round": r, "text": h[0][i], "cosine": round(h[1][i], 6)} for r, h in sorted(history.items())]
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"wrote {args.output}: {len(texts)} texts, mean cosine {float(np.mean(cos)):.4f}", file=sys.stderr)


def cmd_embed(args: argparse.Namespace) -> None:
    import numpy as np

    from . import load_embedder

    texts = _read_texts(Path(args.input), args.field)
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise CliError(f"{out.parent}: output directory does not exist")
    emb = load_embedder(args.embedder)
    vecs = emb.encode(texts, batch_size=args.batch_size)
    np.save(out, vecs)
    print(f"wrote {out}: {vecs.shape[0]} embeddings of dimension {vecs.shape[1]}", file=sys.stderr)


def _int_list(s: str, what: str) -> list:
    out = []
    for part in s.split(","):
        part = part.strip()
        if part.lower() == "none":
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise CliError(f"{what}: expected comma-separated integers (or 'none'), got {s!r}") from None
    return out


def evaluate(corr, texts: list[str], steps_list, beams, *, progress: bool = True, searches=(None,),
             pairs: list | None = None, max_length: int | None = None) -> list[dict]:
    """Metrics of inverting `texts` (embedded by the corrector's embedder) at every
    (num_steps, sequence_beam_width, search) setting; num_steps None is the inverter alone.
    Each row has the metrics on the texts as they are (cased) and lowercased on both sides
    (`*_lower`: what an uncased embedder such as all-MiniLM-L6-v2 can tell), the mean cosine of
    the recovered texts' embeddings to the targets, the seconds the inversion took, and under
    "examples" each text with its recovered text and their cosine."""
    import time

    from . import invert_embeddings, metrics

    E = corr.embed(texts, 128)
    lower = [t.lower() for t in texts]
    rows = []
    for steps in steps_list:
        for beam in ([0] if steps is None else beams):
            for search in searches:
                t0 = time.perf_counter()
                preds = invert_embeddings(E, corr, num_steps=steps, sequence_beam_width=beam, progress=progress,
                                          search=search, max_length=max_length)
                seconds = time.perf_counter() - t0
                P = corr.embed(preds, 128)
                cos = _cos(P, E)
                if pairs is not None:
                    pairs.extend(zip(preds, texts, cos.tolist()))
                pl = [t.lower() for t in preds]
                rows.append({
                    "num_steps": steps, "sequence_beam_width": beam, "n": len(texts),
                    "max_length": 128 if max_length is None else max_length,
                    "search": None if search is None else {k: getattr(search, k) for k in ("candidates", "edit_rounds", "edit_top_k")},
                    "bleu": metrics.bleu(preds, texts), "token_f1": 100 * metrics.token_f1(preds, texts),
                    "exact": 100 * metrics.exact_match(preds, texts),
                    "bleu_lower": metrics.bleu(pl, lower), "token_f1_lower": 100 * metrics.token_f1(pl, lower),
                    "exact_lower": 100 * metrics.exact_match(pl, lower),
                    "cosine": float(cos.mean()), "seconds": round(seconds, 2),
                    "examples": [{"text": t, "recovered": q, "cosine": float(c)} for t, q, c in zip(texts, preds, cos)],
                })
                if progress:
                    r = rows[-1]
                    print(f"steps {steps} beam {beam}{' search' if search else ''}: BLEU {r['bleu']:.1f} "
                          f"({r['bleu_lower']:.1f} lowercased) F1 {r['token_f1']:.1f} ({r['token_f1_lower']:.1f}) "
                          f"exact {r['exact']:.1f} ({r['exact_lower']:.1f}) cos {r['cosine']:.4f} in {seconds:.1f} s",
                          file=sys.stderr)
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| num_steps | beam | search | BLEU | token F1 | exact % | BLEU lc | token F1 lc | exact % lc | cosine | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        srch = "–" if not r.get("search") else "{candidates}/{edit_rounds}/{edit_top_k}".format(**r["search"])
        lines.append(f"| {r['num_steps']} | {r['sequence_beam_width']} | {srch} | {r['bleu']:.1f} | {r['token_f1']:.1f} | "
                     f"{r['exact']:.1f} | {r.get('bleu_lower', float('nan')):.1f} | {r.get('token_f1_lower', float('nan')):.1f} | "
                     f"{r.get('exact_lower', float('nan')):.1f} | {r['cosine']:.4f} | {r.get('seconds', float('nan')):.1f} |")
    return "\n".join(lines)


CALIBRATION_EDGES = (-1.0, 0.3, 0.5, 0.7, 0.85, 0.95, 1.0001)


def calibration(pairs: list, source: str) -> dict:
    """What a cosine means: for bins of the cosine between a recovered text's embedding and its
    target, the mean token F1 (lowercased) of the recovered texts, their count, and the example
    closest to the bin's median F1."""
    from . import metrics

    bins = []
    for lo, hi in zip(CALIBRATION_EDGES[:-1], CALIBRATION_EDGES[1:]):
        got = [(p, r, c) for p, r, c in pairs if lo <= c < hi]
        if not got:
            continue
        f1 = [metrics.token_f1([p.lower()], [r.lower()]) for p, r, _ in got]
        mid = sorted(range(len(got)), key=lambda i: f1[i])[len(got) // 2]
        bins.append({"low": max(lo, -1.0), "high": min(hi, 1.0), "n": len(got), "token_f1": float(np.mean(f1)),
                     "example": f"{got[mid][0]}  <-  {got[mid][1]}"})
    return {"source": source, "bins": bins}


def _search_arg(args):
    """The Search of --search / --candidates / --edit-rounds / --edit-top-k, or None."""
    from .api import Search

    if not (args.search or any(v is not None for v in (args.candidates, args.edit_rounds, args.edit_top_k))):
        return None  # search is on with --search or any of its settings
    d = Search()
    try:
        return Search(candidates=d.candidates if args.candidates is None else args.candidates,
                      edit_rounds=d.edit_rounds if args.edit_rounds is None else args.edit_rounds,
                      edit_top_k=d.edit_top_k if args.edit_top_k is None else args.edit_top_k)
    except ValueError as e:
        raise CliError(str(e).replace("Search.", "--").replace("_", "-")) from None


def _add_max_length_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-length", type=int, default=None,
                   help="generation length of the inverter's output and of each correction round, the start token "
                        "counted (default: vec2text's 128; a model's own budget + 1 is faster, e.g. 33 for minilm)")


def _max_length_arg(args):
    n = getattr(args, "max_length", None)
    if n is not None and n < 2:
        raise CliError(f"--max-length: expected an integer >= 2, got {n}")
    return n


def _add_search_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search (beyond vec2text: more inference for a higher cosine)")
    g.add_argument("--search", action="store_true",
                   help="more candidates per round, the best hypothesis kept, then local token edits")
    g.add_argument("--candidates", type=int, default=None, help="beam candidates per hypothesis and round (default 4)")
    g.add_argument("--edit-rounds", type=int, default=None, help="accepted local edits at most (default 8)")
    g.add_argument("--edit-top-k", type=int, default=None, help="edit proposals per position and kind (default 4)")


def cmd_eval(args: argparse.Namespace) -> None:
    _writable(args.json, "--json")
    _writable(args.calibration, "--calibration")
    try:
        from . import metrics

        metrics.bleu(["a"], ["a"])
        metrics.token_f1(["a"], ["a"])
    except ImportError as e:
        raise CliError(f"eval needs the [metrics] extra (sacrebleu, nltk): pip install 'vec2text_c[metrics]' ({e})") from None
    texts = _read_texts(Path(args.input), args.field)
    if args.limit:
        texts = texts[: args.limit]
    corr = _corrector(args)
    steps = _int_list(args.steps or ("none,1,5,20" if corr.has_corrector else "none"), "--steps")
    beams = _int_list(args.beams, "--beams")
    if any(b is None or b < 0 for b in beams):
        raise CliError(f"--beams: expected integers >= 0, got {args.beams!r}")
    if not corr.has_corrector and any(x is not None for x in steps):
        raise CliError("--steps: this model has no corrector (an inverter alone): only 'none' applies")
    search = _search_arg(args)
    pairs: list = []
    rows = evaluate(corr, texts, steps, beams, progress=not args.quiet, pairs=pairs, max_length=_max_length_arg(args),
                    searches=(None,) if search is None else ((None, search) if args.also_plain else (search,)))
    if args.calibration:
        cal = calibration(pairs, f"{len(texts)} texts of {Path(args.input).name}, every setting evaluated")
        Path(args.calibration).write_text(json.dumps(cal, indent=2) + "\n")
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def cmd_audit(args: argparse.Namespace) -> None:
    from . import audit as audit_mod

    steps = "default"
    if args.steps is not None:
        steps = None if args.steps < 0 else args.steps
    noise = _float_list(args.noise, "--noise")
    summary = audit_mod.audit(
        args.out, chroma=args.chroma, collection=args.collection, lancedb=args.lancedb, table=args.table,
        vectors=args.vectors, texts=args.texts, vector_column=args.vector_column, text_column=args.text_column,
        id_column=args.id_column, corrector=args.corrector, aligner=args.aligner, num_steps=steps,
        sequence_beam_width=args.beam, search=_search_arg(args), dtype=args.dtype, sample=args.sample, seed=args.seed,
        noise=noise, defence_sample=args.defence_sample, engine=args.engine, workers=args.workers,
        threads=args.threads, ray_address=args.ray_address, batch_size=args.batch_size, region=args.region,
        progress=False if args.quiet else None)
    h = summary["headline"]
    out = Path(args.out)
    line = f"audited {h['inverted']} of {h['records']} records ({h['errors']} not inverted); mean cosine {h['mean_cosine']:.3f}"
    if h.get("with_documents"):
        line += (f"; {100 * h['substantially_recovered_share']:.1f} % substantially recovered "
                 f"(token F1 >= {h['threshold_token_f1']:g}), mean token F1 {h['mean_token_f1']:.3f}")
    print(line)
    for kind, v in summary["sensitive"].items():
        if v["found"]:
            print(f"  {kind}: {v['recovered']} of {v['found']} recovered")
    print(f"report: {out / 'report.html'}\nsummary: {out / 'summary.json'}\nresults: {out / 'results.jsonl'}")


def _float_list(s: str, what: str) -> list:
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"{what}: expected comma-separated numbers, got {s!r}") from None


def cmd_train(args: argparse.Namespace) -> None:
    try:
        from .train import (ModelShape, TrainSettings, add_corrected_hypotheses, add_edited_hypotheses, export,
                            make_hypotheses, prepare, train_corrector, train_inverter)
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise CliError(f"training needs the [train] extra (pip install 'vec2text_c[train]'): {e}") from None
    work = Path(args.workdir)
    stages = ["prepare", "inverter", "hypotheses", "corrector", "export"] if args.stage == "all" else [args.stage]
    shape = ModelShape(vocab_size=args.vocab_size, d_model=args.d_model, num_heads=args.heads, d_ff=args.d_ff,
                       num_layers=args.layers, num_decoder_layers=args.decoder_layers,
                       feed_forward_proj=args.feed_forward, num_repeat_tokens=args.repeat_tokens,
                       lowercase=not args.cased)

    lo, hi = args.edited_rate
    if not 0.0 < lo <= hi <= 1.0:
        raise CliError(f"--edited-rate: expected LOW HIGH with 0 < LOW <= HIGH <= 1, got {lo:g} {hi:g}")
    if not 0.0 <= args.corrector_blind <= 1.0:
        raise CliError(f"--corrector-blind: expected a fraction in [0, 1], got {args.corrector_blind:g}")
    if args.corrector_min_cosine is not None and not -1.0 <= args.corrector_min_cosine < 1.0:
        raise CliError(f"--corrector-min-cosine: expected a cosine in [-1, 1), got {args.corrector_min_cosine:g}")
    for flag, v in (("--unlikelihood", args.unlikelihood), ("--sequence-unlikelihood", args.sequence_unlikelihood)):
        if not 0.0 <= v < float("inf"):
            raise CliError(f"{flag}: expected a weight >= 0, got {v:g}")
    if not 0.0 <= args.edited_copies <= 1.0:
        raise CliError(f"--edited-copies: expected a fraction in [0, 1], got {args.edited_copies:g}")

    if args.stage in ("all", "inverter") and args.warm_start != "none":
        from .train.warmstart import bert_dir, check_shape

        check_shape(shape.t5_config(), bert_dir(args.embedder), args.warm_start)

    def settings(steps, **kw):
        return TrainSettings(steps=steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, seed=args.seed,
                             threads=args.threads, bf16=not args.no_bf16, device=args.device,
                             time_budget=args.time_budget, unlikelihood=args.unlikelihood, **kw)

    for stage in stages:
        if stage == "prepare":
            if not args.corpus:
                raise CliError("--corpus: give at least one corpus file or folder for the prepare stage")
            if (work / "data" / "info.json").is_file() and args.stage == "all":
                print(f"{work}: already prepared, reusing its data", file=sys.stderr)
                continue
            prepare(args.corpus, work, shape=shape, embedder=args.embedder, tokenizer_from=args.init_from)
        elif stage == "inverter":
            train_inverter(work, settings(args.inverter_steps, bow_weight=args.bow_weight, warm_start=args.warm_start,
                                          seq_unlikelihood=args.sequence_unlikelihood),
                           init_from=Path(args.init_from) / "inverter" if args.init_from else None)
        elif stage == "hypotheses":
            if not (work / "data" / "hypotheses.npz").is_file() or args.stage == "hypotheses":
                src = args.corrector_init_from
                if args.corrected_hypotheses and src is None:
                    if not (work / "runs" / "corrector" / "state.pt").is_file():
                        raise CliError("--corrected-hypotheses: needs a corrector: give --corrector-init-from "
                                       "(an exported corrector folder) or train this work folder's first")
                    src = export(work, work, only=("corrector",)) / "corrector"
                make_hypotheses(work, n=args.hypotheses, extra=args.hypotheses_extra)
                if args.corrected_hypotheses:
                    add_corrected_hypotheses(work, src, args.corrected_hypotheses, rounds=args.corrected_rounds,
                                             beam=args.corrected_beam)
                if args.edited_hypotheses:
                    add_edited_hypotheses(work, args.edited_hypotheses, rate=tuple(args.edited_rate),
                                          copies=args.edited_copies)
        elif stage == "corrector":
            train_corrector(work, settings(args.corrector_steps, seq_unlikelihood=args.sequence_unlikelihood),
                            init_from=args.corrector_init_from,
                            blind=args.corrector_blind, copy_gate=args.copy_gate,
                            min_cosine=args.corrector_min_cosine)
        elif stage == "export":
            out = export(work, args.out or work / "export", bf16=not args.fp32, int8=args.int8 or ())
            print(f"wrote {out}/inverter and {out}/corrector (load with vec2text_c.load_corrector)", file=sys.stderr)


def _writable(path: str | None, what: str) -> None:
    """Check an output path before any work is done."""
    if path is None:
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise CliError(f"{what} {path}: the folder {parent} does not exist")
    if Path(path).is_dir():
        raise CliError(f"{what} {path}: is a folder; expected a file name")


def _cosine_threshold(s: str) -> float:
    v = float(s)
    if not -1.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a cosine in [-1, 1], got {s}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="vec2text-c", description="Text embedding inversion (vec2text) on a C core.")
    p.add_argument("--version", action="version", version=f"vec2text-c {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="invert a few built-in sentences, printing every correction round")
    _add_model_args(d)
    d.add_argument("--steps", type=int, default=None, help="correction steps (default 5; none for an inverter alone)")
    d.add_argument("--beam", type=int, default=None, help="sequence beam width (default 4)")
    _add_search_args(d)
    _add_max_length_arg(d)
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("invert", help="recover texts from embeddings (.npy) or from texts (.txt/.jsonl) -> JSONL")
    i.add_argument("input", help="a .npy file [N, D] / [D], or a .txt / .jsonl file of texts to embed and invert")
    i.add_argument("-o", "--output", help="the .jsonl file to write (default: standard output)")
    _add_model_args(i)
    i.add_argument("--steps", type=int, default=None,
                   help="correction steps; -1 for the inverter alone (default 20, or -1 for a model without corrector)")
    i.add_argument("--beam", type=int, default=None, help="sequence beam width (default 4 with correction steps)")
    i.add_argument("--rounds", action="store_true", help="also write every round's text and cosine")
    i.add_argument("--keep-best", action="store_true", help="return the best-cosine hypothesis of any round")
    i.add_argument("--stop-at-cosine", type=_cosine_threshold, default=None,
                   help="stop an example once its cosine reaches this (in [-1, 1])")
    i.add_argument("--batch-size", type=int, default=None, help="examples per decoder batch")
    i.add_argument("--field", default="text", help="the text field of .jsonl objects (default: text)")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_search_args(i)
    _add_max_length_arg(i)
    i.set_defaults(func=cmd_invert)

    e = sub.add_parser("embed", help="embed texts (.txt: one per line, .jsonl: strings or objects) into a .npy file")
    e.add_argument("input", help="a .txt or .jsonl file")
    e.add_argument("-o", "--output", required=True, help="the .npy file to write")
    e.add_argument("--field", default="text", help="the text field of .jsonl objects (default: text)")
    e.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                   help=f"a sentence-transformers folder or repository id (default: {DEFAULT_EMBEDDER})")
    e.add_argument("--batch-size", type=int, default=32, help="texts per encoder batch (default 32)")
    e.set_defaults(func=cmd_embed)

    v = sub.add_parser("eval", help="invert texts and print BLEU / token F1 / exact match / cosine per setting")
    v.add_argument("input", help="a .txt or .jsonl file of reference texts")
    _add_model_args(v)
    v.add_argument("--steps", default=None,
                   help="comma-separated num_steps values, 'none' = inverter alone (default none,1,5,20; none without "
                        "a corrector)")
    v.add_argument("--beams", default="1,4", help="comma-separated sequence beam widths")
    v.add_argument("--limit", type=int, default=0, help="use the first N texts only")
    v.add_argument("--json", help="also write the rows as JSON here")
    v.add_argument("--field", default="text", help="the text field of .jsonl objects (default: text)")
    v.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_search_args(v)
    _add_max_length_arg(v)
    v.add_argument("--also-plain", action="store_true", help="with --search, also evaluate every setting without it")
    v.add_argument("--calibration", help="write what each cosine range meant here (token F1, an example) as JSON; "
                                         "the demo prints it when it lies beside a model as calibration.json")
    v.set_defaults(func=cmd_eval)

    t = sub.add_parser("train", help="train an inverter and a corrector (needs the [train] extra)")
    t.add_argument("--corpus", nargs="+", help=".txt / .jsonl files or corpus folders (prepare stage)")
    t.add_argument("--workdir", required=True, help="the work folder (data, runs, resumable state)")
    t.add_argument("--out", help="where to export the checkpoints (default: WORKDIR/export)")
    t.add_argument("--stage", default="all", choices=("all", "prepare", "inverter", "hypotheses", "corrector", "export"),
                   help="run one stage, or all in order, each resuming what the work folder holds (default: all)")
    t.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                   help=f"the embedder whose vectors the models invert (default: {DEFAULT_EMBEDDER})")
    # the defaults are the shipped MiniLM recipe (README): d_model and heads match all-MiniLM-L6-v2's
    # layers, which --warm-start copies
    t.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece pieces trained on the corpus (default 8000)")
    t.add_argument("--d-model", type=int, default=384, help="T5 width (default 384)")
    t.add_argument("--heads", type=int, default=12, help="attention heads (default 12)")
    t.add_argument("--d-ff", type=int, default=1024, help="feed-forward width (default 1024)")
    t.add_argument("--layers", type=int, default=2, help="encoder layers (default 2)")
    t.add_argument("--decoder-layers", type=int, default=3, help="decoder layers (default 3)")
    t.add_argument("--feed-forward", default="gelu", choices=("relu", "gelu", "gated-gelu"),
                   help="T5 feed_forward_proj (default gelu, as BERT's)")
    t.add_argument("--repeat-tokens", type=int, default=16, help="pseudo-tokens the embedding becomes (default 16)")
    t.add_argument("--cased", action="store_true", help="keep the targets' case (default: lowercase, for uncased embedders)")
    t.add_argument("--bow-weight", type=float, default=1.0, help="weight of the inverter's bag-of-words loss (0: off)")
    t.add_argument("--unlikelihood", type=float, default=0.0, metavar="W",
                   help="weight of the token-level unlikelihood loss on the target's earlier tokens, both stages: "
                        "it lowers the probability of repeating them, the greedy decoder's repetition loops "
                        "(default 0: off)")
    t.add_argument("--sequence-unlikelihood", type=float, default=0.0, metavar="W",
                   help="weight of the sequence-level unlikelihood loss, both stages: a quarter of each batch "
                        "is decoded greedily (as the correction loop decodes) and the tokens of its repeated "
                        "4-grams are penalised (default 0: off)")
    t.add_argument("--warm-start", default="layers", choices=("none", "embeddings", "layers"),
                   help="initialise the inverter from the embedder's BERT weights (default: layers)")
    t.add_argument("--init-from", default=None,
                   help="an exported model folder (t5/, inverter/; e.g. vec2text_c/pretrained/minilm) to continue: its "
                        "tokenizer for prepare, its inverter weights instead of the warm start")
    t.add_argument("--corrector-init-from", default=None,
                   help="an exported corrector folder to start the corrector stage from instead of the inverter "
                        "(continuing a run whose work folder is gone)")
    t.add_argument("--time-budget", type=float, default=0.0,
                   help="stop a training stage after this many seconds, saved and resumable (0: no limit)")
    t.add_argument("--inverter-steps", type=int, default=3000, help="optimizer steps of the inverter stage (default 3000)")
    t.add_argument("--corrector-steps", type=int, default=3000, help="optimizer steps of the corrector stage (default 3000)")
    t.add_argument("--hypotheses", type=int, default=None, help="training texts to make corrector hypotheses for")
    t.add_argument("--hypotheses-extra", type=int, default=2,
                   help="beam-search alternatives per training text beside the greedy hypothesis (default 2)")
    t.add_argument("--corrected-hypotheses", type=int, default=0, metavar="N",
                   help="hypotheses stage: also add the hypotheses that a corrector's rounds make for N training "
                        "texts (the corrector's own outputs, what the loop feeds it from round 2 on); the corrector "
                        "is --corrector-init-from, else this work folder's (default 0: none)")
    t.add_argument("--corrected-rounds", type=int, default=1, help="correction rounds for --corrected-hypotheses (default 1)")
    t.add_argument("--corrected-beam", type=int, default=1,
                   help="sequence beam width of those rounds (default 1: greedy)")
    t.add_argument("--edited-hypotheses", type=int, default=0, metavar="N",
                   help="hypotheses stage: also add hypotheses made by randomly editing N training texts' own tokens "
                        "(substitute / delete / insert at a rate drawn per text in 5-50%%): near misses the corrector "
                        "must fix rather than rewrite (default 0: none)")
    t.add_argument("--edited-rate", type=float, nargs=2, default=(0.05, 0.5), metavar=("LOW", "HIGH"),
                   help="the range each edited text's edit rate is drawn from (default 0.05 0.5)")
    t.add_argument("--edited-copies", type=float, default=0.0, metavar="F",
                   help="the fraction of the --edited-hypotheses texts left unedited: the text itself as its "
                        "hypothesis, which the corrector must learn to keep (default 0)")
    t.add_argument("--corrector-blind", type=float, default=0.0, metavar="F",
                   help="corrector stage: the fraction of training examples whose embeddings are zeroed, so that "
                        "only the hypothesis tokens tell the target (teaches the corrector to read them; default 0)")
    t.add_argument("--corrector-min-cosine", type=float, default=None, metavar="C",
                   help="corrector stage, a fresh run: train only on the hypotheses whose embedding has at least "
                        "this cosine to their target's (far ones teach a language model, not correction; default: "
                        "all; a resumed run keeps its own)")
    t.add_argument("--copy-gate", action=argparse.BooleanOptionalAction, default=None,
                   help="corrector stage, a fresh run: a learnt bonus at each decoder step for the hypothesis' token "
                        "of that step, so that keeping the right tokens of a hypothesis is learnt at once "
                        "(default: as --corrector-init-from's config says, else off; a resumed run keeps its own)")
    t.add_argument("--batch-size", type=int, default=128, help="training examples per step (default 128)")
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine-decayed (default 2e-3)")
    t.add_argument("--warmup", type=int, default=300, help="linear warm-up steps (default 300)")
    t.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order (default 0)")
    t.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads (default: all cores)")
    t.add_argument("--device", default="cpu", help="where PyTorch trains: cpu (default), cuda or cuda:N")
    t.add_argument("--no-bf16", action="store_true", help="train in fp32 even where the CPU has bf16")
    t.add_argument("--fp32", action="store_true", help="export fp32 weights (default: bf16 storage)")
    t.add_argument("--int8", nargs="+", metavar="PATTERN",
                   help="export the matrices whose names match these patterns (fnmatch, e.g. "
                        "'embedding_transform_*.3.weight') as int8 by rows, a float32 scale per row: half "
                        "their bf16 size, read by vec2text_c only")
    t.set_defaults(func=cmd_train)

    a = sub.add_parser("audit", help="audit a vector store for what its vectors give away (needs the [audit] extra)")
    g = a.add_argument_group("the store (one of --chroma, --lancedb, --vectors)")
    g.add_argument("--chroma", help="a Chroma persistent folder (with --collection)")
    g.add_argument("--collection", help="the Chroma collection to audit")
    g.add_argument("--lancedb", help="a LanceDB database folder (with --table)")
    g.add_argument("--table", help="the LanceDB table to audit")
    g.add_argument("--vectors", help="a .npy array [N, D] or a .parquet file with a vector column")
    g.add_argument("--texts", help="with a .npy: the documents, one per row (.txt: one per line, or .jsonl)")
    g.add_argument("--vector-column", help="the vector column of a .parquet / LanceDB table (default: vector or embedding)")
    g.add_argument("--text-column", help="the document column (default: text, document or content, when present)")
    g.add_argument("--id-column", help="the id column (default: id when present, else row numbers)")
    g = a.add_argument_group("the attack")
    g.add_argument("--corrector", default="minilm",
                   help="the model: minilm (shipped), gtr-base, a model folder (inverter/, corrector/) or an inverter "
                        "checkpoint (default: minilm)")
    g.add_argument("--aligner", help="a folder saved by vec2text_c.align that maps the store's vectors into the model's space")
    g.add_argument("--steps", type=int, default=None,
                   help="correction steps; -1 for the inverter alone (default 20, or the inverter alone without a corrector)")
    g.add_argument("--beam", type=int, default=None, help="sequence beam width (default 4 with correction steps)")
    g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="T5 matmul weights: float32 (exact) or bfloat16 (faster)")
    _add_search_args(a)
    g = a.add_argument_group("what to audit")
    g.add_argument("--sample", type=int, default=None, help="audit N records drawn with --seed (default: all)")
    g.add_argument("--seed", type=int, default=0, help="seed of the sample and of the defence noise (default 0)")
    g.add_argument("--noise", default="0,0.001,0.01,0.05,0.1,0.5",
                   help="noise levels of the defence curve, comma-separated (default 0,0.001,0.01,0.05,0.1,0.5)")
    g.add_argument("--defence-sample", type=int, default=64,
                   help="records the defence curve inverts at each noise level (default 64; 0: no curve)")
    g.add_argument("--region", default="US", help="default region for phone numbers without a country code (default US)")
    g = a.add_argument_group("where it runs")
    g.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local: this process; ray: Ray actors (default local)")
    g.add_argument("--ray-address", help="an existing Ray cluster (auto, ray://head:10001); default: a local instance")
    g.add_argument("--workers", type=int, default=None, help="Ray actors (default: CPUs // --threads)")
    g.add_argument("--threads", type=int, default=None, help="C core threads per Ray actor (default 1)")
    g.add_argument("--batch-size", type=int, default=16, help="records per task (default 16)")
    a.add_argument("--out", required=True, help="the folder for results.jsonl, report.html and summary.json; "
                                                "rerun with the same settings to resume")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_audit)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as e:
        print(f"vec2text-c: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, NotImplementedError, ImportError, OSError, RuntimeError) as e:
        print(f"vec2text-c: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vec2text-c: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
