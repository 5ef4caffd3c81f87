#!/usr/bin/env python3
"""The shipped inverter's recipe (vec2text_c/train) trained on a lent accelerator in one
time-boxed command, prepared and proven here first.

Three steps:

  pack    here, from the work folder of `vec2text-c train --stage prepare` (the C core embeds
          nothing here; the texts travel, not their embeddings):
              python tools/device_train.py pack --workdir run/ --out .device [--init run/runs/inverter/best.pt]
          .device/ (git-ignored; name it in the device tool's `carry`) holds texts.txt.gz (the
          prepared training + validation texts), t5/ (spiece.model, config.json), recipe.json,
          bert/ (the embedder: config, tokenizer.json, weights in bf16 with only the word rows
          the texts and the vocabulary use) and, with --init, init.safetensors (bf16 weights to
          continue from instead of the warm start). The command prints the sizes: the carried
          files and the working tree must stay under 64 MiB together. The shipped weights in
          vec2text_c/pretrained/ count against that (about 35 MB), and the packed embedder of
          the full corpus is about as large: move vec2text_c/pretrained out of the checkout for
          the run (`mv vec2text_c/pretrained /tmp/`, back afterwards; training there needs none
          of it), and check the sum before calling the device.
  train   there (PyTorch, transformers, sentencepiece, tokenizers, safetensors; no vec2text_c
          build: this file loads vec2text_c/train/{modeling,trainer,warmstart}.py by path):
              python3 tools/device_train.py train --pack .device --out $OUT --minutes 8.5
          embeds the texts with the BERT (mean pooling + L2 norm, as sentence-transformers),
          tokenizes the lowercase targets as `prepare` does, warm-starts the T5 (or loads
          init), trains with bf16 autocast until the budget (all of it counted from the start,
          data preparation included), measures the gate on validation texts every
          --eval-every steps, and writes $OUT/inverter-0000N.safetensors (bf16, shards of at
          most 15 MB: the device returns files of at most 16 MiB), $OUT/log.jsonl and
          $OUT/summary.json. Nothing is written to $OUT after the budget.
  unpack  here:
              python tools/device_train.py unpack --from <files_at> --workdir run/
          installs the weights as run/runs/inverter/state.pt (model only; a later resume starts
          a fresh optimizer) and best.pt, so that the CPU stages continue from them
          (`vec2text-c train --stage hypotheses`, then corrector and export).

tests/test_device_train.py runs all three on the CPU with a 30-second budget.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAIN_DIR = ROOT / "vec2text_c" / "train"
SHARD_BYTES = 15 * 1000 * 1000


def _load(name: str):
    """vec2text_c/train/<name>.py as a standalone module (the package needs its C core)."""
    spec = importlib.util.spec_from_file_location(f"v2t_device_{name}", TRAIN_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


# ---- pack (here) ---------------------------------------------------------------------------


def pack(workdir: Path, out: Path, init: Path | None = None) -> dict:
    import shutil

    import torch
    from safetensors.torch import save_file

    from vec2text_c.train.pipeline import load_texts
    from vec2text_c.train.warmstart import _HFWordPiece, bert_dir

    info = json.loads((workdir / "data" / "info.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    texts = load_texts(workdir / "data" / "train.txt") + load_texts(workdir / "data" / "val.txt")
    if len(texts) != info["n_train"] + info["n_val"]:
        raise ValueError(f"{workdir}/data: {len(texts)} texts, info.json says {info['n_train']} + {info['n_val']}")
    with gzip.open(out / "texts.txt.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("".join(t + "\n" for t in texts))
    (out / "t5").mkdir(exist_ok=True)
    for name in ("spiece.model", "config.json"):
        shutil.copyfile(workdir / "t5" / name, out / "t5" / name)
    (out / "recipe.json").write_text(json.dumps({"info": info}, indent=2) + "\n")

    # the embedder: every file but the weights, and the weights in bf16 with the word rows in use
    src = bert_dir(info["embedder"])
    (out / "bert").mkdir(exist_ok=True)
    for f in ("config.json", "tokenizer.json"):
        shutil.copyfile(src / f, out / "bert" / f)
    from safetensors.torch import load_file

    import sentencepiece as spm

    t = load_file(str(src / "model.safetensors"))
    wp = _HFWordPiece(src / "tokenizer.json")
    used = set()
    for i in range(0, len(texts), 4096):
        for enc in wp.tok.encode_batch(texts[i:i + 4096]):
            used.update(enc.ids)
    sp = spm.SentencePieceProcessor(model_file=str(workdir / "t5" / "spiece.model"))
    vocab = wp.vocab()
    for i in range(sp.get_piece_size()):  # what piece_embeddings looks up
        piece = sp.id_to_piece(i).lstrip("\u2581")
        used.update(wp.encode(piece))
        if "##" + piece.lower() in vocab:
            used.add(vocab["##" + piece.lower()])
    used.update(vocab[s] for s in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if s in vocab)
    key = next(k for k in t if k.endswith("embeddings.word_embeddings.weight"))
    rows = torch.tensor(sorted(used), dtype=torch.int64)
    packed = {k: v.to(torch.bfloat16).contiguous() for k, v in t.items()
              if k != key and v.is_floating_point() and "pooler" not in k}  # sentence-transformers pools itself
    packed["word_rows"] = t[key][rows].to(torch.bfloat16).contiguous()
    packed["word_ids"] = rows.to(torch.int32)
    save_file(packed, str(out / "bert" / "packed.safetensors"),
              metadata={"word_key": key, "vocab_size": str(t[key].shape[0])})
    if init is not None:
        state = torch.load(init, map_location="cpu", weights_only=True)["model"]
        save_file({k: v.to(torch.bfloat16).contiguous() for k, v in state.items() if not k.endswith("embed_tokens.weight")},
                  str(out / "init.safetensors"))
    sizes = {p.name: _size(p) for p in sorted(out.iterdir())}
    sizes["total"] = _size(out)
    _say("packed " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()))
    return sizes


# ---- train (there) -------------------------------------------------------------------------


class DeviceEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (BERT, mean pooling over the mask, L2
    normalisation) from the packed bf16 weights, on `device`, in fp32."""

    def __init__(self, bert: Path, device):
        import torch
        import transformers
        from safetensors import safe_open
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        cfg = transformers.BertConfig.from_dict(json.loads((bert / "config.json").read_text()))
        self.model = transformers.BertModel(cfg, add_pooling_layer=False)
        t = load_file(str(bert / "packed.safetensors"))
        with safe_open(str(bert / "packed.safetensors"), "pt") as f:
            meta = f.metadata()
        full = torch.zeros(int(meta["vocab_size"]), t["word_rows"].shape[1])
        full[t.pop("word_ids").long()] = t.pop("word_rows").float()
        t[meta["word_key"]] = full
        t = {(k[len("bert."):] if k.startswith("bert.") else k): v.float() for k, v in t.items()}
        missing, unexpected = self.model.load_state_dict(t, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(f"{bert}: weights do not fit the BERT: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.model.to(device).eval()
        self.device = device
        self.tok = Tokenizer.from_file(str(bert / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.no_truncation()

    def encode(self, texts: list[str], max_length: int = 128, batch_size: int = 1024) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                enc = []
                for e in self.tok.encode_batch(texts[i:i + batch_size]):
                    x = e.ids  # [CLS] ... [SEP]; cut as sentence-transformers does, keeping [SEP]
                    enc.append(x if len(x) <= max_length else x[:max_length - 1] + [x[-1]])
                L = max(len(x) for x in enc)
                ids = torch.zeros((len(enc), L), dtype=torch.long)
                mask = torch.zeros((len(enc), L), dtype=torch.long)
                for j, x in enumerate(enc):
                    ids[j, :len(x)] = torch.tensor(x)
                    mask[j, :len(x)] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                m = mask.unsqueeze(-1).float()
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(e, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def encode_targets(texts: list[str], sp_model: Path, max_len: int, lowercase: bool) -> tuple[np.ndarray, np.ndarray]:
    """Token ids as `prepare` writes them: SentencePiece pieces, </s>, cut to max_len keeping </s>."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    ids = np.zeros((len(texts), max_len), dtype=np.int32)
    lengths = np.zeros(len(texts), dtype=np.int32)
    for i, row in enumerate(sp.encode([t.lower() if lowercase else t for t in texts])):
        row = row[:max_len - 1] + [1]
        ids[i, :len(row)] = row
        lengths[i] = len(row)
    return ids, lengths


def _save_shards(state: dict, out: Path, stem: str) -> list[str]:
    """bf16 safetensors shards of at most SHARD_BYTES; returns their names."""
    import torch
    from safetensors.torch import save_file

    for old in out.glob(f"{stem}-*.safetensors"):
        old.unlink()
    shards, cur, size = [], {}, 0
    for k, v in state.items():
        if k.endswith("embed_tokens.weight"):
            continue
        v = v.detach().to(torch.bfloat16).contiguous().cpu()
        n = v.numel() * 2
        if cur and size + n > SHARD_BYTES:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = v, size + n
    if cur:
        shards.append(cur)
    names = []
    for i, sh in enumerate(shards):
        name = f"{stem}-{i:05d}.safetensors"
        tmp = out / (name + ".tmp")
        save_file(sh, str(tmp))
        os.replace(tmp, out / name)
        names.append(name)
    return names


def _read_shards(folder: Path, stem: str) -> dict:
    from safetensors.torch import load_file

    state = {}
    files = sorted(folder.glob(f"{stem}-*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no {stem}-*.safetensors files")
    for f in files:
        state.update(load_file(str(f)))
    return state


def train(pack_dir: Path, out: Path, minutes: float, *, device: str = "cuda", batch_size: int = 512, lr: float = 1e-3,
          bow_weight: float = 1.0, eval_every: int = 500, gate_texts: int = 200, steps: int | None = None,
          seed: int = 0, reserve_s: float = 20.0) -> dict:
    t_start = time.time()
    budget = 60.0 * minutes
    import torch

    modeling, trainer, warmstart = _load("modeling"), _load("trainer"), _load("warmstart")
    dev = trainer.resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    recipe = json.loads((pack_dir / "recipe.json").read_text())
    info = recipe["info"]
    shape = info["shape"]
    texts = gzip.open(pack_dir / "texts.txt.gz", "rt", encoding="utf-8").read().split("\n")[:-1]
    n_train, n_val = info["n_train"], info["n_val"]
    emb = DeviceEmbedder(pack_dir / "bert", dev)
    E = emb.encode(texts)
    ids, lengths = encode_targets(texts, pack_dir / "t5" / "spiece.model", shape["max_seq_length"], shape["lowercase"])
    _say(f"data: {n_train} + {n_val} texts embedded and tokenized in {time.time() - t_start:.1f} s")

    t5_config = json.loads((pack_dir / "t5" / "config.json").read_text())
    torch.manual_seed(seed)
    model = modeling.InversionModule(t5_config, E.shape[1], shape["num_repeat_tokens"])
    if (pack_dir / "init.safetensors").is_file():
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(str(pack_dir / "init.safetensors")).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if [k for k in missing if not k.endswith("embed_tokens.weight")] or unexpected:
            raise ValueError(f"init.safetensors does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        start = "init.safetensors"
    else:
        start = f"warm start {_warm_start_packed(warmstart, model, pack_dir)}"
    _say(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, from {start}")

    Et = torch.from_numpy(E)
    bow = float(bow_weight)

    def labels(idx):
        n = int(lengths[idx].max())
        lab = torch.from_numpy(ids[idx, :n].astype(np.int64))
        lab[lab == 0] = -100
        return lab.to(dev, non_blocking=True)

    def loss_fn(m, idx, weight=bow):
        return m(Et[idx].to(dev, non_blocking=True), labels(idx), weight)

    def val_fn(m):
        tot = 0.0
        for i in range(0, n_val, 500):
            j = n_train + np.arange(i, min(n_val, i + 500))
            tot += float(loss_fn(m, j, 0.0)) * len(j)
        return tot / n_val

    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(pack_dir / "t5" / "spiece.model"))
    g_rows = n_train + np.arange(min(gate_texts, n_val))
    words = re.compile(r"\w+")

    def gate_fn(m) -> dict:
        x, mask = m.encoder_inputs(Et[g_rows].to(dev))
        gen = m.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=shape["max_seq_length"],
                                         do_sample=False, num_beams=1).cpu().numpy()
        dec = [sp.decode([int(t) for t in row if t > 2]) for row in gen]
        h = emb.encode(dec, max_length=shape["max_seq_length"])
        cos = (h * E[g_rows]).sum(1) / np.maximum(np.linalg.norm(h, axis=1) * np.linalg.norm(E[g_rows], axis=1), 1e-8)
        f1 = []
        for a, b in zip(dec, (texts[r] for r in g_rows)):
            a, b = set(words.findall(a.lower())), set(words.findall(b.lower()))
            k = len(a & b)
            f1.append(float(a == b) if not a or not b else (0.0 if k == 0 else 2 * k / (len(a) + len(b))))
        _say(f"gate: cosine {cos.mean():.3f}, bag-of-words F1 {np.mean(f1):.3f}: {dec[0]!r}")
        return {"gate_cosine": float(cos.mean()), "gate_bow_f1": float(np.mean(f1))}

    def left() -> float:
        return budget - (time.time() - t_start) - reserve_s

    if left() <= 0:
        raise RuntimeError(f"no time left to train: {budget:.0f} s budget, {time.time() - t_start:.0f} s spent on data")
    # a few steps to measure the step time, then a schedule (warm-up, cosine decay) sized to the
    # time that is left; the time budget stops it in any case
    from dataclasses import replace

    settings = trainer.TrainSettings(steps=10**6, batch_size=batch_size, lr=lr, warmup=300, eval_every=eval_every,
                                     save_every=10**9, log_every=25, bf16=True, device=device, bow_weight=bow,
                                     warm_start="none", time_budget=left(), seed=seed)
    run = Path(os.environ.get("TMPDIR", "/tmp")) / f"v2t_device_run_{os.getpid()}"
    calib = 20
    t0 = time.time()
    trainer.fit(model, loss_fn, lengths[:n_train], None, settings, run, progress=False, stop_at=calib)
    rate = (time.time() - t0) / calib
    total = steps or calib + max(1, int(left() / rate * 0.9))
    _say(f"{rate * 1000:.0f} ms per step of {batch_size}: a schedule of {total} steps")
    settings = replace(settings, steps=total, time_budget=max(1.0, left()))
    log = trainer.fit(model, loss_fn, lengths[:n_train], val_fn, settings, run, progress=False, gate_fn=gate_fn)
    # the final gate, unless the last step had one
    last = max(r["step"] for r in log)
    if not any("gate_cosine" in r and r["step"] == last for r in log) and time.time() - t_start < budget - reserve_s / 2:
        model.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16):
            g = gate_fn(model)
        log.append({"step": last, **g})
        if not (run / "best.pt").is_file() or g["gate_cosine"] > torch.load(run / "best.pt", weights_only=True)["gate_cosine"]:
            torch.save({"model": model.state_dict(), "step": last, **g}, run / "best.pt")
    best = torch.load(run / "best.pt", weights_only=True) if (run / "best.pt").is_file() else {"model": model.state_dict(), "step": last}
    names = _save_shards(best["model"], out, "inverter")
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    summary = {"steps": last, "best_step": best.get("step"), "gate_cosine": best.get("gate_cosine"),
               "gate_bow_f1": best.get("gate_bow_f1"), "files": names, "seconds": round(time.time() - t_start, 1),
               "device": str(dev), "torch": torch.__version__, "batch_size": batch_size, "lr": lr,
               "start": start, "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _say(f"done in {summary['seconds']} s: {last} steps, best gate cosine {summary['gate_cosine']}")
    return summary


def _warm_start_packed(warmstart, model, pack_dir: Path) -> dict:
    """warm_start_t5 from the packed bf16 BERT (rebuilt as a plain folder in a temp dir)."""
    import tempfile

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    bert = pack_dir / "bert"
    t = load_file(str(bert / "packed.safetensors"))
    with safe_open(str(bert / "packed.safetensors"), "pt") as f:
        meta = f.metadata()
    full = torch.zeros(int(meta["vocab_size"]), t["word_rows"].shape[1])
    full[t.pop("word_ids").long()] = t.pop("word_rows").float()
    t[meta["word_key"]] = full
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        save_file({k: v.float().contiguous() for k, v in t.items()}, str(d / "model.safetensors"))
        for f in ("config.json", "tokenizer.json"):
            (d / f).write_bytes((bert / f).read_bytes())
        return warmstart.warm_start_t5(model.encoder_decoder, pack_dir / "t5" / "spiece.model", d, "layers")


# ---- unpack (here) ---------------------------------------------------------------------------


def unpack(src: Path, workdir: Path) -> dict:
    import torch

    summary = json.loads((src / "summary.json").read_text())
    state = {k: v.float() for k, v in _read_shards(src, "inverter").items()}
    shared = state["encoder_decoder.shared.weight"]  # the tied aliases the shards leave out
    state["encoder_decoder.encoder.embed_tokens.weight"] = shared
    state["encoder_decoder.decoder.embed_tokens.weight"] = shared
    run = workdir / "runs" / "inverter"
    run.mkdir(parents=True, exist_ok=True)
    rec = {"model": state, "step": int(summary["steps"]), "device_summary": summary}
    torch.save(rec, run / "state.pt")
    torch.save({"model": state, "step": summary.get("best_step"), "gate_cosine": summary.get("gate_cosine"),
                "gate_bow_f1": summary.get("gate_bow_f1")}, run / "best.pt")
    log = run / "log.jsonl"
    with open(log, "a") as f:
        for line in (src / "log.jsonl").read_text().splitlines():
            r = json.loads(line)
            r["device"] = True
            f.write(json.dumps(r) + "\n")
    _say(f"installed the device run ({summary['steps']} steps, gate cosine {summary['gate_cosine']}) into {run}")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--workdir", required=True, type=Path)
    a.add_argument("--out", required=True, type=Path)
    a.add_argument("--init", type=Path, default=None, help="a state.pt / best.pt to continue from")
    b = sub.add_parser("train")
    b.add_argument("--pack", required=True, type=Path)
    b.add_argument("--out", required=True, type=Path)
    b.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of the whole command (default 8.5)")
    b.add_argument("--device", default="cuda")
    b.add_argument("--batch-size", type=int, default=512)
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--eval-every", type=int, default=500)
    b.add_argument("--gate-texts", type=int, default=200)
    b.add_argument("--steps", type=int, default=None, help="the LR schedule's length (default: from the budget)")
    c = sub.add_parser("unpack")
    c.add_argument("--from", dest="src", required=True, type=Path)
    c.add_argument("--workdir", required=True, type=Path)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(args.workdir, args.out, args.init)
    elif args.cmd == "train":
        train(args.pack, args.out, args.minutes, device=args.device, batch_size=args.batch_size, lr=args.lr,
              eval_every=args.eval_every, gate_texts=args.gate_texts, steps=args.steps)
    else:
        unpack(args.src, args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
