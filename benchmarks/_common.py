"""Helpers shared by the benchmarks: thread pinning, timing, random-weight T5 checkpoints."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path


def set_threads(n: int) -> None:
    """Same thread count for oneDNN (OpenMP) and PyTorch. Call before importing either."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(n)


def timeit(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


T5_SHAPES = {
    "t5-small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    "t5-base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
}


def random_t5(shape: str, cache_dir: Path, no_eos: bool = True):
    """A T5 (v1.0, ReLU) with random weights and the real vocabulary size, saved once.

    With no_eos the eos row of the (untied) lm_head is zeroed so that greedy decoding never
    stops early: both sides then decode exactly the requested number of tokens.
    """
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    path = Path(cache_dir) / f"{shape}-random{'-noeos' if no_eos else ''}"
    cfg = T5Config(vocab_size=32128, tie_word_embeddings=not no_eos, decoder_start_token_id=0, **T5_SHAPES[shape])
    if not (path / "model.safetensors").exists():
        torch.manual_seed(0)
        model = T5ForConditionalGeneration(cfg).eval()
        if no_eos:
            with torch.no_grad():
                model.lm_head.weight[cfg.eos_token_id].zero_()
        model.save_pretrained(path, safe_serialization=True)
    model = T5ForConditionalGeneration.from_pretrained(path).eval()
    model.generation_config.decoder_start_token_id = 0  # as real T5 checkpoints set it (older caches lack it)
    return path, model


def decoder_bytes(model) -> int:
    """Bytes of weights one decoder step streams: decoder blocks (less the cross-attention key and
    value projections, which run once per source) + final norm + lm_head."""
    n = sum(p.numel() for name, p in model.decoder.block.named_parameters()
            if not ("EncDecAttention.k." in name or "EncDecAttention.v." in name))
    n += model.decoder.final_layer_norm.weight.numel() + model.lm_head.weight.numel()
    return 4 * n
