#!/usr/bin/env python3
"""The README's quality plot from `vec2text-c eval --json` files: cosine and lowercased token F1
against correction steps ("none" = the inverter alone), one line per set and sequence beam
width, search results as separate markers, and an optional reference row (the previous model)
as a dashed line.

    python tools/plot_eval.py --set "held-out test" eval/test.json --set "Wikipedia leads" eval/wiki.json \
        --previous 0.219 14.7 --out docs/eval_quality.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", nargs=2, action="append", metavar=("NAME", "JSON"), required=True,
                    help="a set's name and its eval --json file (repeatable)")
    ap.add_argument("--previous", nargs=2, type=float, metavar=("COSINE", "F1"),
                    help="the previous model's cosine and token F1, drawn as a dashed line")
    ap.add_argument("--out", required=True, help="the PNG to write")
    args = ap.parse_args()

    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=110)
    axes = fig.subplots(1, 2)
    order = [None, 1, 5, 20]
    labels = ["none", "1", "5", "20"]
    for (name, path), color in zip(args.set, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        rows = json.loads(Path(path).read_text())
        for beam, style in ((1, ":"), (4, "-")):
            plain = {r["num_steps"]: r for r in rows if not r.get("search")
                     and (r["num_steps"] is None or r["sequence_beam_width"] == beam)}
            xs = [i for i, s in enumerate(order) if s in plain]
            for ax, key in zip(axes, ("cosine", "token_f1_lower")):
                ax.plot(xs, [plain[order[i]][key] for i in xs], style, marker="o", color=color,
                        label=f"{name}, beam {beam}")
        for r in rows:
            if r.get("search") and r["num_steps"] in order:
                i = order.index(r["num_steps"])
                for ax, key in zip(axes, ("cosine", "token_f1_lower")):
                    ax.plot([i], [r[key]], marker="*", markersize=12, color=color, linestyle="none",
                            label=f"{name}, search (n={r['n']})")
    if args.previous:
        for ax, v in zip(axes, args.previous):
            ax.axhline(v, color="gray", linestyle="--", label="previous model (20 steps, beam 4)")
    for ax, title in zip(axes, ("cosine of the recovered text to the target", "token F1, lowercased")):
        ax.set_xticks(range(len(order)), labels)
        ax.set_xlabel("correction steps")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    seen = dict(zip(names, handles))
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.32, wspace=0.25)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
