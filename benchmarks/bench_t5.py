"""T5 encoder forward and greedy decoding: vec2text_c vs transformers (PyTorch CPU fp32).

Side by side in one process, same random weights, same thread count; prints ratios.
Usage: python benchmarks/bench_t5.py [--threads 2] [--shapes t5-small t5-base]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import decoder_bytes, random_t5, set_threads, timeit

# Measured DRAM read bandwidth of this machine (PERFORMANCE.md): ~15 GB/s one thread, ~28 GB/s two.
BANDWIDTH = {1: 15e9, 2: 28e9}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", nargs="+", default=["t5-small", "t5-base"])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "v2t-bench"))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="vec2text_c weight dtype (PyTorch stays fp32; bf16 ids may differ from fp32)")
    args = ap.parse_args()
    set_threads(args.threads)

    import numpy as np
    import torch

    import vec2text_c

    rng = np.random.default_rng(0)
    print(f"dtype={args.dtype}  threads={args.threads}  torch={torch.__version__}  oneDNN={vec2text_c._core.onednn_version()[:3]}")
    for shape in args.shapes:
        path, ref = random_t5(shape, Path(args.cache))
        ours = vec2text_c.T5Model.from_pretrained(path, dtype=args.dtype)

        # encoder: batch 32 x 32 tokens
        ids = rng.integers(2, 32000, size=(32, 32)).astype(np.int64)
        mask = np.ones_like(ids)
        tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)
        with torch.inference_mode():
            t_ref = timeit(lambda: ref.encoder(input_ids=tids, attention_mask=tmask), repeat=5)
            t_ours = timeit(lambda: ours.encode(input_ids=ids, attention_mask=mask), repeat=5)
            flops = 2 * 32 * 32 * sum(p.numel() for n, p in ref.encoder.block.named_parameters() if "weight" in n and p.dim() == 2)
        print(f"[{shape}] encoder 32x32: torch {t_ref*1e3:.1f} ms, vec2text_c {t_ours*1e3:.1f} ms, "
              f"speedup {t_ref/t_ours:.2f}x, matmul GFLOP/s {flops/t_ours/1e9:.0f} "
              f"({flops/t_ours/1e9/(205*args.threads):.0%} of fp32 peak)")

        # greedy decoding of new_tokens tokens, batch 1 and 16
        n = args.new_tokens
        for batch in (1, 16):
            src = rng.integers(2, 32000, size=(batch, 32)).astype(np.int64)
            tsrc = torch.from_numpy(src)
            with torch.inference_mode():
                out_ref = ref.generate(input_ids=tsrc, max_length=n + 1, num_beams=1, do_sample=False)
                out_ours = ours.generate(input_ids=src, max_length=n + 1)
                same = out_ref.shape == out_ours.shape and bool((out_ref.numpy() == out_ours).all())
                t_ref = timeit(lambda: ref.generate(input_ids=tsrc, max_length=n + 1, num_beams=1, do_sample=False), repeat=3)
                t_ours = timeit(lambda: ours.generate(input_ids=src, max_length=n + 1), repeat=3)
            step = t_ours / n
            floor = decoder_bytes(ref) / BANDWIDTH.get(args.threads, 28e9)
            if args.dtype == "bfloat16":
                floor /= 2  # half the weight bytes
            print(f"[{shape}] greedy {n} tokens, batch {batch}: torch {t_ref*1e3:.0f} ms, vec2text_c {t_ours*1e3:.0f} ms, "
                  f"speedup {t_ref/t_ours:.2f}x, step {step*1e3:.2f} ms = {step/floor:.2f}x the bandwidth floor "
                  f"({floor*1e3:.2f} ms), identical ids: {same}")


if __name__ == "__main__":
    main()
