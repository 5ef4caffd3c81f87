"""What the search option buys at equal wall time: `invert_embeddings(..., search=...)` against
the plain vec2text loop given more correction steps, on real text and a trained model.

Each setting inverts the same embeddings in this process, alternating plain and search
settings; the table gives seconds, the cosine of the recovered texts' embeddings to the targets,
token F1 and BLEU (lowercased), and for every search setting the plain setting of nearest wall
time at or above it ("equal time"). With an inverter-only model the plain side is the inverter
alone and more edit rounds.

Usage: python benchmarks/bench_search.py TEXTS.txt [--model minilm | --inverter DIR --corrector DIR]
       [--n 50] [--beam 4] [--plain-steps 1,5,10,20] [--search 1:4:8:4,5:4:8:4] [--json out.json]
--search entries are steps:candidates:edit_rounds:edit_top_k.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("texts", type=Path)
    p.add_argument("--model", default="minilm")
    p.add_argument("--inverter")
    p.add_argument("--corrector")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--plain-steps", default="1,5,10,20")
    p.add_argument("--search", default="1:4:8:4,5:4:8:4")
    p.add_argument("--json")
    args = p.parse_args(argv)

    import vec2text_c
    from vec2text_c import metrics

    if args.inverter:
        corr = vec2text_c.load_corrector(args.inverter, args.corrector)
    else:
        corr = vec2text_c.load_pretrained_corrector(args.model)
    texts = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()][: args.n]
    E = corr.embed(texts, 128)
    lower = [t.lower() for t in texts]

    def measure(label, steps, beam, search):
        t0 = time.perf_counter()
        preds = vec2text_c.invert_embeddings(E, corr, num_steps=steps, sequence_beam_width=beam, search=search)
        dt = time.perf_counter() - t0
        P = corr.embed(preds, 128)
        cos = (P * E).sum(1) / (np.linalg.norm(P, axis=1) * np.linalg.norm(E, axis=1))
        pl = [t.lower() for t in preds]
        row = {"setting": label, "seconds": round(dt, 2), "cosine": float(cos.mean()),
               "token_f1_lower": 100 * metrics.token_f1(pl, lower), "bleu_lower": metrics.bleu(pl, lower),
               "search": search is not None}
        print(f"{label:32s} {dt:8.1f} s  cos {row['cosine']:.4f}  F1 {row['token_f1_lower']:.1f}  "
              f"BLEU {row['bleu_lower']:.1f}", file=sys.stderr, flush=True)
        return row

    plain, searched = [], []
    if corr.has_corrector:
        plain_settings = [(f"plain {s} steps, beam {args.beam}", int(s), args.beam) for s in args.plain_steps.split(",")]
    else:
        plain_settings = [("inverter alone", None, 0)]
    search_settings = []
    for spec in args.search.split(","):
        s, c, e, k = (int(x) for x in spec.split(":"))
        steps = s if corr.has_corrector else None
        beam = args.beam if corr.has_corrector else 0
        label = (f"search {s} steps {c}/{e}/{k}" if corr.has_corrector else f"search edits {e}/{k}")
        search_settings.append((label, steps, beam, vec2text_c.Search(candidates=c if corr.has_corrector else 0,
                                                                       edit_rounds=e, edit_top_k=k)))
    for i in range(max(len(plain_settings), len(search_settings))):  # alternate the two kinds
        if i < len(plain_settings):
            plain.append(measure(*plain_settings[i], None))
        if i < len(search_settings):
            searched.append(measure(*search_settings[i]))

    print("\n| setting | seconds | cosine | token F1 (lc) | BLEU (lc) | plain at equal time: setting, cosine |")
    print("|---|---|---|---|---|---|")
    for r in sorted(plain + searched, key=lambda r: r["seconds"]):
        eq = ""
        if r["search"]:
            later = [q for q in plain if q["seconds"] >= r["seconds"]]
            q = min(later, key=lambda q: q["seconds"]) if later else max(plain, key=lambda q: q["seconds"])
            eq = f"{q['setting']} ({q['seconds']:.0f} s): {q['cosine']:.4f}"
            r["equal_time_plain"] = q["setting"]
        print(f"| {r['setting']} | {r['seconds']:.1f} | {r['cosine']:.4f} | {r['token_f1_lower']:.1f} | "
              f"{r['bleu_lower']:.1f} | {eq} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": len(texts), "rows": plain + searched}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
