"""The `vec2text-c` command line.

Subcommands: `demo` (embed a handful of built-in sentences with the real all-MiniLM-L6-v2 and
show the vectors), `embed` (texts from .txt / .jsonl -> .npy). Errors end with one line on
stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEMO_SENTENCES = [
    "The cat sat quietly on the warm windowsill.",
    "Interest rates rose again after the central bank meeting.",
    "She booked a flight to Lisbon for the first week of June.",
    "Text embeddings can leak the text they were computed from.",
]


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _read_texts(path: Path, field: str) -> list[str]:
    if not path.is_file():
        raise CliError(f"{path}: file not found")
    texts: list[str] = []
    with open(path, encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CliError(f"{path}:{n}: not valid JSON ({e.msg})") from None
                if isinstance(obj, str):
                    texts.append(obj)
                elif isinstance(obj, dict) and isinstance(obj.get(field), str):
                    texts.append(obj[field])
                else:
                    raise CliError(f"{path}:{n}: expected a JSON string or an object with a string field {field!r}")
        else:
            texts = [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        raise CliError(f"{path}: no texts found (empty file)")
    return texts


def cmd_demo(args: argparse.Namespace) -> None:
    import numpy as np

    from . import load_embedder

    emb = load_embedder(args.embedder)
    vecs = emb.encode(DEMO_SENTENCES)
    print(f"embedder: {args.embedder} (dim {emb.dim})")
    print(f"embeddings: shape {tuple(vecs.shape)}, dtype {vecs.dtype}")
    for text, v in zip(DEMO_SENTENCES, vecs):
        print(f"  norm {np.linalg.norm(v):.6f}  first values {np.array2string(v[:4], precision=4)}  {text}")
    sims = vecs @ vecs.T
    print("cosine similarities:")
    print(np.array2string(sims, precision=3))


def cmd_embed(args: argparse.Namespace) -> None:
    import numpy as np

    from . import load_embedder

    texts = _read_texts(Path(args.input), args.field)
    emb = load_embedder(args.embedder)
    vecs = emb.encode(texts, batch_size=args.batch_size)
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise CliError(f"{out.parent}: output directory does not exist")
    np.save(out, vecs)
    print(f"wrote {out}: {vecs.shape[0]} embeddings of dimension {vecs.shape[1]}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vec2text-c", description="Text embedding inversion (vec2text) on a C core.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="embed a few built-in sentences and show the vectors")
    d.add_argument("--embedder", default="sentence-transformers/all-MiniLM-L6-v2")
    d.set_defaults(func=cmd_demo)
    e = sub.add_parser("embed", help="embed texts (.txt: one per line, .jsonl: strings or objects) into a .npy file")
    e.add_argument("input", help="a .txt or .jsonl file")
    e.add_argument("-o", "--output", required=True, help="the .npy file to write")
    e.add_argument("--field", default="text", help="the text field of .jsonl objects (default: text)")
    e.add_argument("--embedder", default="sentence-transformers/all-MiniLM-L6-v2")
    e.add_argument("--batch-size", type=int, default=32)
    e.set_defaults(func=cmd_embed)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as e:
        print(f"vec2text-c: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, NotImplementedError, ImportError) as e:
        print(f"vec2text-c: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vec2text-c: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
