"""Plots for the README: training / validation loss of a `vec2text-c train` work folder, and
the quality table that `vec2text-c eval --json` writes.

    python tools/plot_training.py --workdir WORK --eval eval.json --out docs/
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _log(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def plot_losses(workdir: Path, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, kind in zip(axes, ("inverter", "corrector")):
        p = workdir / "runs" / kind / "log.jsonl"
        if not p.is_file():
            ax.set_title(f"{kind}: no run")
            continue
        log = _log(p)
        tr = [(r["step"], r["loss"]) for r in log if "loss" in r]
        va = [(r["step"], r["val_loss"]) for r in log if "val_loss" in r]
        ax.plot(*zip(*tr), label="train", lw=1)
        if va:
            ax.plot(*zip(*va), "o-", label="validation", ms=3)
        ax.set_title(kind)
        ax.set_xlabel("step (batch 128)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("cross-entropy per token")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plot_quality(rows: list[dict], out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    base = [r for r in rows if r["num_steps"] is None]
    for beam in sorted({r["sequence_beam_width"] for r in rows if r["num_steps"] is not None}):
        rs = sorted((r for r in rows if r["num_steps"] is not None and r["sequence_beam_width"] == beam),
                    key=lambda r: r["num_steps"])
        xs = [0] + [r["num_steps"] for r in rs] if base else [r["num_steps"] for r in rs]
        for ax, key in zip(axes, ("bleu", "token_f1", "cosine")):
            ys = ([base[0][key]] if base else []) + [r[key] for r in rs]
            ax.plot(xs, ys, "o-", label=f"beam {beam}")
    for ax, title in zip(axes, ("BLEU", "token F1", "cosine")):
        ax.set_title(title)
        ax.set_xlabel("correction steps (0 = inverter alone)")
        ax.set_xscale("symlog", linthresh=1)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def plot_gate(runs: dict[str, Path], out: Path) -> None:
    """The inverter's gate (greedy cosine on validation texts) and validation cross-entropy
    over training steps, one line per run folder (the recipe and its ablations)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, d in runs.items():
        log = _log(d / "runs" / "inverter" / "log.jsonl")
        g = sorted({r["step"]: r["gate_cosine"] for r in log if "gate_cosine" in r}.items())
        v = sorted({r["step"]: r["val_loss"] for r in log if "val_loss" in r}.items())
        if g:
            axes[0].plot(*zip(*g), "o-", ms=3, label=name)
        if v:
            axes[1].plot(*zip(*v), "o-", ms=3, label=name)
    axes[0].set_title("gate: cosine of the greedy inverter's text to its target")
    axes[1].set_title("validation cross-entropy per token")
    for ax in axes:
        ax.set_xlabel("step (batch 128)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--eval", type=Path)
    ap.add_argument("--gate", nargs="+", metavar="NAME=WORKDIR", help="runs whose inverter gate to plot")
    ap.add_argument("--out", type=Path, default=Path("docs"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if a.workdir:
        plot_losses(a.workdir, a.out / "training_loss.png")
    if a.eval:
        plot_quality(json.loads(a.eval.read_text()), a.out / "quality.png")
    if a.gate:
        plot_gate({k: Path(v) for k, v in (x.split("=", 1) for x in a.gate)}, a.out / "inverter_gate.png")


if __name__ == "__main__":
    main()
