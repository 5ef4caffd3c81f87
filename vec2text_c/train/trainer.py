"""The training loop shared by the inverter and the corrector: AdamW, linear warm-up then
cosine decay, bf16 autocast on CPUs (and GPUs) that have it, on the CPU or a CUDA device, length-bucketed batches, a validation loss
every `eval_every` steps, and a resumable state file.

Everything about one run lives in its folder:
    state.pt      model + optimizer + step (written every `save_every` steps and at the end)
    log.jsonl     one line per logged step: {"step", "loss", "lr", "seconds"} (plus the loss parts a
                  model reports in `last_parts`), {"step", "val_loss"}, or the gate's measures
                  {"step", "gate_cosine", ...}
    best.pt       the model weights with the highest gate cosine so far (when a gate is given)
Running again with the same folder resumes where the state file stops; the batch order is a
function of (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["TrainSettings", "fit", "length_batches"]


@dataclass
class TrainSettings:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    warmup: int = 300
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    clip: float = 1.0
    seed: int = 0
    eval_every: int = 250
    save_every: int = 250
    log_every: int = 25
    bf16: bool = True
    threads: int | None = None
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    # the inverter's recipe (train_inverter): the weight of the bag-of-words loss on the encoder
    # output, and the warm start from the embedder's BERT weights ("none", "embeddings", "layers")
    bow_weight: float = 0.0
    warm_start: str = "none"
    # both stages: the weight of the token-level unlikelihood loss on the earlier target tokens
    # (modeling.unlikelihood_loss; 0: off), against the greedy decoder's repetition loops
    unlikelihood: float = 0.0
    # both stages: the weight of the sequence-level unlikelihood loss on the greedy decodings of
    # each batch's first `seq_unlikelihood_rows` fraction (InversionModule.sequence_unlikelihood)
    seq_unlikelihood: float = 0.0
    seq_unlikelihood_rows: float = 0.25
    # stop after this many seconds of training (0: no limit); the state is saved first
    time_budget: float = 0.0


def length_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, pool: int = 64) -> list[np.ndarray]:
    """Batches of indices for one epoch: shuffled, then sorted by length within pools of
    `pool` batches so that a batch pads little, then the batches shuffled again."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches = []
    span = batch_size * pool
    for i in range(0, len(order), span):
        chunk = order[i:i + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    perm = rng.permutation(len(batches))
    return [batches[k] for k in perm if len(batches[k]) == batch_size or len(batches) == 1]


def _lr(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    t = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _bf16_ok() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str):
    """The torch.device for TrainSettings.device, or a ValueError that says what is missing."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {name!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested, but this PyTorch sees no CUDA device "
                         f"(torch {torch.__version__}, torch.cuda.is_available() is False)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return dev


def fit(model, loss_fn: Callable, lengths: np.ndarray, val_fn: Callable | None, settings: TrainSettings,
        run_dir: str | Path, *, progress: bool = True, stop_at: int | None = None,
        gate_fn: Callable | None = None) -> list[dict]:
    """Train `model` for settings.steps steps (or pause after step `stop_at`, or once
    settings.time_budget seconds have passed: the state is saved and a later call resumes the
    same schedule). loss_fn(model, indices) -> scalar loss on the training examples `indices`;
    val_fn(model) -> validation loss; gate_fn(model) -> {"gate_cosine": float, ...}, measured
    with the validation loss (both under no_grad); the weights of the best gate cosine are
    kept in best.pt. Returns the log records."""
    import torch

    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    dev = resolve_device(settings.device)
    model.to(dev)  # before the optimizer exists, so that its state follows the parameters
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = run_dir / "state.pt", run_dir / "log.jsonl"
    fast = dict(getattr(model, "lr_multipliers", {}))  # name -> learning-rate factor (a group each)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n not in fast]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 and n not in fast]
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        + [{"params": [named[n]], "weight_decay": 0.0, "lr_mult": float(f)} for n, f in sorted(fast.items())],
        lr=settings.lr, betas=(0.9, 0.98), eps=1e-8,
    )
    step = 0
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        if "optimizer" in state:
            opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        if progress:
            fresh = "" if "optimizer" in state else " with a fresh optimizer (the state file has none)"
            print(f"resuming {run_dir} at step {step}{fresh}", file=sys.stderr)
    log = []
    if log_path.is_file():
        log = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
        log = [r for r in log if r["step"] <= step]
        log_path.write_text("".join(json.dumps(r) + "\n" for r in log))

    def save():
        tmp = state_path.with_name("state.pt.tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "settings": asdict(settings)}, tmp)
        os.replace(tmp, state_path)

    def gate_best() -> float:
        return max((r["gate_cosine"] for r in log if "gate_cosine" in r), default=float("-inf"))

    def write(rec):
        log.append(rec)
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    if dev.type == "cuda":
        use_bf16 = settings.bf16 and torch.cuda.is_bf16_supported()
    else:
        use_bf16 = settings.bf16 and _bf16_ok()
    per_epoch = max(1, len(lengths) // settings.batch_size)
    epoch, batches = -1, []
    t0, running, count = time.time(), 0.0, 0
    parts: dict = {}
    model.train()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.steps, initial=step, desc=run_dir.name, file=sys.stderr, dynamic_ncols=True)
    end = settings.steps if stop_at is None else min(settings.steps, int(stop_at))
    while step < end:
        e = step // per_epoch
        if e != epoch:
            epoch, batches = e, length_batches(lengths, settings.batch_size, settings.seed, e)
        idx = batches[(step % per_epoch) % len(batches)]
        lr = _lr(step, settings)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = loss_fn(model, idx)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{run_dir}: loss became {loss.item()} at step {step}; lower the learning rate")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        running, count = running + loss.item(), count + 1
        for k, v in (getattr(model, "last_parts", None) or {}).items():
            parts[k] = parts.get(k, 0.0) + v
        if bar is not None:
            bar.update(1)
        if step % settings.log_every == 0 or step == settings.steps:
            rec = {"step": step, "loss": running / count, "lr": lr, "seconds": round(time.time() - t0, 1)}
            rec.update({k: v / count for k, v in parts.items()})
            write(rec)
            if bar is not None:
                bar.set_postfix(loss=f"{running / count:.3f}")
            running, count, parts = 0.0, 0, {}
        over = settings.time_budget > 0 and time.time() - t0 >= settings.time_budget
        if (val_fn is not None or gate_fn is not None) and (step % settings.eval_every == 0 or step == settings.steps):
            model.eval()
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                if val_fn is not None:
                    write({"step": step, "val_loss": float(val_fn(model))})
                if gate_fn is not None:
                    best = gate_best()
                    g = {k: float(v) for k, v in gate_fn(model).items()}
                    write({"step": step, **g})
                    if g["gate_cosine"] > best:
                        tmp = run_dir / "best.pt.tmp"
                        torch.save({"model": model.state_dict(), "step": step, **g}, tmp)
                        os.replace(tmp, run_dir / "best.pt")
            model.train()
        if step % settings.save_every == 0 or step == end or over:
            save()
        if over:
            if progress:
                print(f"{run_dir}: time budget of {settings.time_budget:.0f} s reached at step {step}", file=sys.stderr)
            break
    if bar is not None:
        bar.close()
    model.eval()
    return log
