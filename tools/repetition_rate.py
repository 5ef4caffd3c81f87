#!/usr/bin/env python3
"""How often an inverter falls into a repetition loop ("headheadhead…", "considered considered …"):
the inverter alone (vec2text's num_steps=None) on the C core, max_length 33 (the correction
loop's first hypothesis), and the share of outputs whose tokens repeat a 4-gram, with the mean
cosine of the recovered texts' embeddings to the targets, for those outputs and the rest.

    python tools/repetition_rate.py --inverter vec2text_c/pretrained/minilm/inverter other/inverter \
        --set "held-out test" eval/test.txt --set "Wikipedia leads" eval/wiki.txt
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def repeats_a_4gram(ids: list[int]) -> bool:
    seen = set()
    for t in range(3, len(ids)):
        g = tuple(ids[t - 3:t + 1])
        if g in seen:
            return True
        seen.add(g)
    return False


def measure(inverter: str, corrector: str, texts: list[str]) -> dict:
    import vec2text_c

    c = vec2text_c.load_corrector(inverter, corrector)
    E = c.embed(texts, 32)
    out = vec2text_c.invert_embeddings(E, c, max_length=33, progress=False)
    R = c.embed(out, 32)
    cos = (R * E).sum(1) / np.maximum(np.linalg.norm(R, axis=1) * np.linalg.norm(E, axis=1), 1e-8)
    rep = np.array([repeats_a_4gram(c.tokenizer.encode(t, add_special_tokens=False)) for t in out])
    return {"n": len(texts), "repeats": float(rep.mean()), "cosine": float(cos.mean()),
            "cosine_repeating": float(cos[rep].mean()) if rep.any() else None,
            "cosine_rest": float(cos[~rep].mean()) if (~rep).any() else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inverter", nargs="+", required=True, help="exported inverter folders")
    ap.add_argument("--corrector", default=str(Path(__file__).resolve().parents[1] / "vec2text_c" / "pretrained"
                                               / "minilm" / "corrector"),
                    help="a corrector folder to load beside them (unused by the inverter alone; default: the shipped one)")
    ap.add_argument("--set", nargs=2, action="append", metavar=("NAME", "FILE"), required=True,
                    help="a set's name and its text file, one text a line (repeatable)")
    ap.add_argument("--n", type=int, default=200, help="texts per set (default 200)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    rows = []
    for inv in args.inverter:
        for name, f in args.set:
            texts = [t for t in Path(f).read_text(encoding="utf-8").splitlines() if t.strip()][:args.n]
            r = {"inverter": inv, "set": name, **measure(inv, args.corrector, texts)}
            rows.append(r)
            print(f"{inv} | {name} | repeats {100 * r['repeats']:.1f} % | cosine {r['cosine']:.3f} "
                  f"(repeating {r['cosine_repeating'] or float('nan'):.3f}, rest {r['cosine_rest'] or float('nan'):.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
