"""Training an inverter and a corrector for an embedder, end to end, in one work folder:

    prepare   corpus -> train / validation / test texts, a SentencePiece T5 tokenizer, token
              ids and target embeddings (the embedder runs on the C core)
    inverter  train the InversionModel (vec2text_c.train.modeling) on (embedding -> text)
    hypotheses  the trained inverter's greedy hypotheses for the corrector's training texts,
              generated and re-embedded on the C core (vec2text's own pipeline spends most of
              its time here)
    corrector train the CorrectorEncoderModel on (target, hypothesis, its embedding -> text),
              its T5 initialised from the inverter's
    export    vec2text checkpoint folders (config.json + model.safetensors, bf16 storage
              by default) that `vec2text_c.load_corrector` reads

Work folder layout (every stage reads the previous stages' files; each can be rerun or
resumed):
    data/{train,val,test}.txt  data/ids.npz  data/embeddings.npy  data/hypotheses.npz
                (data/embeddings.parts/: the finished chunks of an interrupted prepare stage)
    t5/         tokenizer + T5 config (model_name_or_path of both checkpoints)
    runs/inverter/, runs/corrector/   state.pt, log.jsonl (see trainer.py)
    inverter/, corrector/             exported checkpoints
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .corpora import heldout_split, read_corpus
from .trainer import TrainSettings, fit

__all__ = ["ModelShape", "prepare", "spread", "gate", "train_inverter", "make_hypotheses", "add_corrected_hypotheses",
           "train_corrector", "export", "load_texts"]

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class ModelShape:
    """The T5 and embedding-transform shape of both models."""

    vocab_size: int = 8000
    d_model: int = 256
    num_heads: int = 4
    d_ff: int = 1024
    num_layers: int = 3
    feed_forward_proj: str = "relu"
    num_repeat_tokens: int = 8
    max_seq_length: int = 32
    num_decoder_layers: int | None = None  # None: num_layers
    # lowercase the targets (and the tokenizer's training text): for uncased embedders such as
    # all-MiniLM-L6-v2, whose embedding carries no case
    lowercase: bool = False

    def t5_config(self) -> dict:
        """The transformers T5Config fields of this shape."""
        return dict(
            vocab_size=self.vocab_size, d_model=self.d_model, d_kv=self.d_model // self.num_heads,
            num_heads=self.num_heads, d_ff=self.d_ff, num_layers=self.num_layers,
            num_decoder_layers=self.num_layers if self.num_decoder_layers is None else self.num_decoder_layers,
            feed_forward_proj=self.feed_forward_proj,
            dropout_rate=0.0, tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0,
            eos_token_id=1, relative_attention_num_buckets=32, relative_attention_max_distance=128,
            layer_norm_epsilon=1e-6, is_encoder_decoder=True, model_type="t5",
            architectures=["T5ForConditionalGeneration"],
        )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_texts(path: Path) -> list[str]:
    return [t for t in Path(path).read_text(encoding="utf-8").split("\n") if t]


def _fit_budget(texts, tok, max_tokens: int) -> list[str]:
    """Texts whose token count (with </s>) is at most max_tokens; longer ones are cut into word
    halves until they fit."""
    out = []
    stack = list(reversed(texts))
    while stack:
        t = stack.pop()
        if len(tok.encode(t)) <= max_tokens:
            out.append(t)
        else:
            w = t.split()
            if len(w) >= 6:
                h = len(w) // 2
                stack.append(" ".join(w[h:]))
                stack.append(" ".join(w[:h]))
    return out


class _Lowercased:
    """A tokenizer that lowercases what it encodes (the targets of an uncased embedder)."""

    def __init__(self, tok):
        self.tok = tok

    def encode(self, text: str, **kw):
        return self.tok.encode(text.lower(), **kw)


def _encode_ids(texts, tok, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(texts), max_len), dtype=np.int32)
    lengths = np.zeros(len(texts), dtype=np.int32)
    for i, t in enumerate(texts):
        row = tok.encode(t, max_length=max_len)
        ids[i, :len(row)] = row
        lengths[i] = len(row)
    return ids, lengths


def _embed(embedder, texts: list[str], what: str, chunk: int = 4096, parts: Path | None = None,
           key: str = "") -> np.ndarray:
    """The embeddings of `texts`, `chunk` texts at a time. parts: a folder where each finished
    chunk is saved, so that an interrupted run resumes at the first missing chunk; the folder
    is keyed by a hash of the texts, the chunk size, the embedder's width and `key` (its name),
    and chunks of other texts or another embedder are never reused."""
    import hashlib

    from tqdm.auto import tqdm

    folder = None
    if parts is not None:
        h = hashlib.sha256(f"{key}\0{chunk}\0{embedder.dim}\0".encode())
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass") + b"\0")
        folder = parts / h.hexdigest()[:16]
        if parts.is_dir():  # chunks of another text list (an earlier split) are of no use
            for old in parts.iterdir():
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    out = []
    starts = range(0, len(texts), chunk)
    done = 0
    if folder is not None:
        while done < len(starts) and (folder / f"{done:05d}.npy").is_file():
            out.append(np.load(folder / f"{done:05d}.npy"))
            done += 1
        if done:
            _say(f"embedding {what}: {done} of {len(starts)} chunks already done, resuming")
    for k in tqdm(range(done, len(starts)), desc=f"embedding {what}", file=sys.stderr, dynamic_ncols=True,
                  initial=done, total=len(starts)):
        i = starts[k]
        e = np.asarray(embedder.encode(texts[i:i + chunk], batch_size=256, max_length=128), dtype=np.float32)
        if folder is not None:
            tmp = folder / f"{k:05d}.tmp.npy"
            np.save(tmp, e)
            tmp.replace(folder / f"{k:05d}.npy")
        out.append(e)
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)


def _train_vocabulary(texts: list[str], vocab_size: int, out: Path) -> None:
    """train_sentencepiece, with SentencePiece's complaint about a corpus too small for the
    vocabulary turned into a ValueError that says what to change."""
    import re

    from .tokenizer import train_sentencepiece

    try:
        train_sentencepiece(texts, vocab_size, out)
    except RuntimeError as e:
        m = re.search(r"<= *(\d+)", str(e))
        most = f" (at most {m.group(1)} for this corpus)" if m else ""
        raise ValueError(f"vocab_size: the corpus ({len(texts)} training texts) is too small for a vocabulary of "
                         f"{vocab_size} pieces{most}: give more text or a smaller --vocab-size") from None


def prepare(corpus: list[str], workdir: str | Path, *, shape: ModelShape = ModelShape(),
            embedder: str = DEFAULT_EMBEDDER, heldout_fraction: float = 0.02, val_size: int = 1000,
            tokenizer_from: str | Path | None = None) -> None:
    """Texts, tokenizer, ids and target embeddings of a work folder. tokenizer_from: a folder
    holding t5/spiece.model (an exported model's) to use instead of training a vocabulary, so
    that committed weights can be trained further."""
    from ..embedders import load_embedder
    from ..t5_tokenizer import T5Tokenizer
    from .tokenizer import write_tokenizer_files

    w = Path(workdir)
    (w / "data").mkdir(parents=True, exist_ok=True)
    texts = read_corpus(corpus)
    train, held = heldout_split(texts, heldout_fraction)
    _say(f"corpus: {len(texts)} texts -> {len(train)} train, {len(held)} held out")
    if not held or not train:
        raise ValueError(f"corpus: {len(texts)} distinct texts leave {len(train)} for training and {len(held)} for "
                         f"validation (held-out fraction {heldout_fraction}); both need at least one: give more text")
    t5 = w / "t5"
    if tokenizer_from is not None:
        src = Path(tokenizer_from) / "t5" / "spiece.model"
        if not src.is_file():
            raise FileNotFoundError(f"tokenizer_from: {src} not found")
        t5.mkdir(parents=True, exist_ok=True)
        (t5 / "spiece.model").write_bytes(src.read_bytes())
    if not (t5 / "spiece.model").is_file():
        _train_vocabulary([t.lower() for t in train] if shape.lowercase else train, shape.vocab_size, t5)
    write_tokenizer_files(t5, shape.max_seq_length)
    (t5 / "config.json").write_text(json.dumps(shape.t5_config(), indent=2) + "\n")
    tok = T5Tokenizer.from_pretrained(t5)
    if shape.lowercase:
        tok = _Lowercased(tok)
    train = _fit_budget(train, tok, shape.max_seq_length)
    held = _fit_budget(held, tok, shape.max_seq_length)
    if not train or not held:
        raise ValueError(f"corpus: no {'training' if not train else 'validation'} text fits max_seq_length = "
                         f"{shape.max_seq_length} tokens (texts of 6 words or more are cut in halves until they "
                         "fit; shorter ones that do not fit are dropped): give shorter texts")
    val, test = held[:val_size], held[val_size:]
    for name, part in (("train", train), ("val", val), ("test", test)):
        (w / "data" / f"{name}.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in part), encoding="utf-8")
    ids, lengths = _encode_ids(train + val, tok, shape.max_seq_length)
    np.savez(w / "data" / "ids.npz", ids=ids, lengths=lengths, n_train=len(train))
    emb = load_embedder(embedder)
    parts = w / "data" / "embeddings.parts"
    E = _embed(emb, train + val, "train + val", parts=parts, key=embedder)
    tmp = w / "data" / "embeddings.tmp.npy"
    np.save(tmp, E)
    tmp.replace(w / "data" / "embeddings.npy")
    shutil.rmtree(parts, ignore_errors=True)
    (w / "data" / "info.json").write_text(json.dumps(
        {"embedder": embedder, "dim": int(E.shape[1]), "shape": asdict(shape), "corpus": [str(c) for c in corpus],
         "n_train": len(train), "n_val": len(val), "n_test": len(test)}, indent=2) + "\n")
    _say(f"prepared {w}: {len(train)} train / {len(val)} val / {len(test)} test texts, dim {E.shape[1]}")


def _info(w: Path) -> dict:
    p = w / "data" / "info.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: run the prepare stage first")
    return json.loads(p.read_text())


def _labels(torch, ids: np.ndarray, lengths: np.ndarray, idx: np.ndarray, dev):
    n = int(lengths[idx].max())
    lab = torch.from_numpy(ids[idx, :n].astype(np.int64))
    lab[lab == 0] = -100
    return lab.to(dev)


def _on(m):
    """The device the module's parameters live on (batches follow it)."""
    return next(m.parameters()).device


def _batched_val(fn, n: int, bs: int = 250) -> float:
    tot = 0.0
    for i in range(0, n, bs):
        j = np.arange(i, min(n, i + bs))
        tot += float(fn(j)) * len(j)
    return tot / n


def spread(count: int, n: int | None, seed: int = 0) -> np.ndarray:
    """Indices of `n` of `count` items drawn with a fixed seed, in increasing order (all of them
    when n is None or >= count). The splits keep the corpus order, one corpus after another, so a
    prefix would see only the first corpora: gates and hypotheses sample across the whole split."""
    if n is None or n >= count:
        return np.arange(count, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(count, size=int(n), replace=False)).astype(np.int64)


def gate(workdir: str | Path, n: int = 200, batch: int = 100):
    """The inverter's gate: a function model -> {"gate_cosine", "gate_bow_f1"} that decodes `n`
    validation texts drawn across the split (`spread`) greedily (max_length = max_seq_length, as
    the correction loop's step 0), embeds the decoded texts with the embedder on the C core and
    measures the mean cosine to the target embeddings and the mean bag-of-words F1 (sets of
    lowercased words)."""
    import re

    import torch

    from ..embedders import load_embedder
    from ..t5_tokenizer import T5Tokenizer

    w = Path(workdir)
    info = _info(w)
    L = int(info["shape"]["max_seq_length"])
    val = load_texts(w / "data" / "val.txt")
    if not val:
        raise ValueError(f"{w / 'data' / 'val.txt'}: no validation texts for the gate")
    pick = spread(len(val), n)
    texts = [val[i] for i in pick]
    rows = info["n_train"] + pick
    target = np.asarray(np.load(w / "data" / "embeddings.npy", mmap_mode="r")[rows], dtype=np.float32)
    tok = T5Tokenizer.from_pretrained(w / "t5")
    emb = load_embedder(info["embedder"])
    words = re.compile(r"\w+")

    def bag(t):
        return set(words.findall(t.lower()))

    def f1(a, b):
        a, b = bag(a), bag(b)
        if not a or not b:
            return float(a == b)
        k = len(a & b)
        return 0.0 if k == 0 else 2 * k / (len(a) + len(b))

    def measure(m) -> dict:
        dev = _on(m)
        out = []
        for i in range(0, len(texts), batch):
            e = torch.from_numpy(target[i:i + batch]).to(dev)
            x, mask = m.encoder_inputs(e)
            ids = m.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=L, do_sample=False,
                                             num_beams=1)
            out += tok.batch_decode(ids.cpu().numpy(), skip_special_tokens=True)
        h = emb.encode(out, batch_size=256, max_length=L)
        cos = (h * target).sum(1) / np.maximum(np.linalg.norm(h, axis=1) * np.linalg.norm(target, axis=1), 1e-8)
        return {"gate_cosine": float(cos.mean()), "gate_bow_f1": float(np.mean([f1(a, b) for a, b in zip(out, texts)])),
                "gate_example": out[0]}

    def fn(m) -> dict:
        r = measure(m)
        _say(f"gate: cosine {r['gate_cosine']:.3f}, bag-of-words F1 {r['gate_bow_f1']:.3f}: {r.pop('gate_example')!r}")
        return r

    return fn


def corrector_gate(workdir: str | Path, n: int = 200, batch: int = 100):
    """The corrector's gate: a function model -> {"gate_cosine", "gate_bow_f1", "gate_start_cosine"}
    that corrects the inverter's greedy hypotheses of `n` validation texts (`spread`) once
    (greedy, as one correction round with beam width 1), embeds the results with the embedder on
    the C core and measures the mean cosine to the targets and the bag-of-words F1;
    gate_start_cosine is the hypotheses' own cosine, so the gain of a round is their difference.
    gate_keep_cosine / gate_keep_exact: the same round given each target's own tokens as the
    hypothesis (a right answer): the cosine of what comes out, and the fraction returned
    unchanged. A corrector that ignores its hypothesis scores there what it scores from any
    start, and the loop, which keeps no earlier round, loses every right text it reaches."""
    import re

    import torch

    from ..embedders import load_embedder
    from ..t5_tokenizer import T5Tokenizer

    w = Path(workdir)
    info = _info(w)
    L = int(info["shape"]["max_seq_length"])
    h = np.load(w / "data" / "hypotheses.npz")
    k0 = int(h["n_train"])
    pick = k0 + spread(len(h["rows"]) - k0, n)
    rows, hyp, hemb = h["rows"][pick], h["ids"][pick], h["embeddings"][pick]
    if not len(rows):
        raise ValueError(f"{w / 'data' / 'hypotheses.npz'}: no validation hypotheses for the corrector's gate")
    target = np.asarray(np.load(w / "data" / "embeddings.npy", mmap_mode="r")[rows], dtype=np.float32)
    texts = load_texts(w / "data" / "val.txt")
    texts = [texts[int(r) - info["n_train"]] for r in rows]
    tok = T5Tokenizer.from_pretrained(w / "t5")
    emb = load_embedder(info["embedder"])
    words = re.compile(r"\w+")

    def cosines(a, b):
        return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)

    def f1(a, b):
        a, b = set(words.findall(a.lower())), set(words.findall(b.lower()))
        if not a or not b:
            return float(a == b)
        k = len(a & b)
        return 0.0 if k == 0 else 2 * k / (len(a) + len(b))

    start = float(cosines(hemb, target).mean())
    # the targets' own tokens in the loop's row format (start token, tokens, </s>), embedded as the loop would
    d = np.load(w / "data" / "ids.npz")
    own = np.zeros_like(hyp)
    for j, r in enumerate(rows.tolist()):
        t = d["ids"][r, :max(0, int(d["lengths"][r]) - 1)][:hyp.shape[1] - 2]
        own[j, 1:1 + len(t)] = t
        own[j, 1 + len(t)] = 1
    own_text = tok.batch_decode(own, skip_special_tokens=True)
    own_emb = emb.encode(own_text, batch_size=256, max_length=L)

    def one_round(m, dev, h_ids, h_emb) -> list[str]:
        out = []
        for i in range(0, len(rows), batch):
            hl = int(max(1, ((h_ids[i:i + batch] != 0).sum(1) + 1).max()))
            ids = m.generate_greedy(torch.from_numpy(target[i:i + batch]).to(dev),
                                    torch.from_numpy(h_emb[i:i + batch]).to(dev),
                                    torch.from_numpy(h_ids[i:i + batch, :hl].astype(np.int64)).to(dev), L)
            out += tok.batch_decode(ids.cpu().numpy(), skip_special_tokens=True)
        return out

    def fn(m) -> dict:
        dev = _on(m)
        out = one_round(m, dev, hyp, hemb)
        kept = one_round(m, dev, own, own_emb)
        got = emb.encode(out, batch_size=256, max_length=L)
        r = {"gate_cosine": float(cosines(got, target).mean()),
             "gate_bow_f1": float(np.mean([f1(a, b) for a, b in zip(out, texts)])), "gate_start_cosine": start,
             "gate_keep_cosine": float(cosines(emb.encode(kept, batch_size=256, max_length=L), target).mean()),
             "gate_keep_exact": float(np.mean([a == b for a, b in zip(kept, own_text)]))}
        _say(f"corrector gate: cosine {start:.3f} -> {r['gate_cosine']:.3f} after one round, bag-of-words F1 "
             f"{r['gate_bow_f1']:.3f}: {out[0]!r}; given the targets themselves: cosine {r['gate_keep_cosine']:.3f}, "
             f"{100 * r['gate_keep_exact']:.0f} % kept")
        return r

    return fn


def load_exported(model, folder: str | Path) -> None:
    """Load the weights of an exported checkpoint folder (export's model.safetensors: bf16,
    fp32, int8 rows) into a training module; the tied embedding aliases come from the shared
    matrix."""
    import torch
    from safetensors.torch import load_file

    from .._safetensors_io import merge_int8_rows

    f = Path(folder) / "model.safetensors"
    if not f.is_file():
        raise FileNotFoundError(f"init_from: {f} not found (expected a folder written by export)")
    state = {k: v.float() for k, v in merge_int8_rows(load_file(str(f))).items()}
    shared = state.get("encoder_decoder.shared.weight")
    if shared is not None:
        state.setdefault("encoder_decoder.encoder.embed_tokens.weight", shared)
        state.setdefault("encoder_decoder.decoder.embed_tokens.weight", shared)
    want = model.state_dict()
    for k in ("copy_gate.weight", "copy_gate.bias"):  # a corrector gaining the copy gate starts it at zeros
        if k in want and k not in state:
            state[k] = want[k]
    bad = [k for k in want if k not in state or tuple(state[k].shape) != tuple(want[k].shape)]
    if bad:
        k = bad[0]
        got = "missing" if k not in state else f"shape {list(state[k].shape)}"
        raise ValueError(f"init_from: {f} does not fit this model: {k} expected shape {list(want[k].shape)}, got {got}"
                         f" ({len(bad)} such tensors)")
    with torch.no_grad():
        model.load_state_dict({k: state[k] for k in want})


def _same_tokenizer(w: Path, folder: Path) -> None:
    mine, theirs = w / "t5" / "spiece.model", folder.parent / "t5" / "spiece.model"
    if theirs.is_file() and mine.read_bytes() != theirs.read_bytes():
        raise ValueError(f"init_from: {folder} was trained with another tokenizer ({theirs}); prepare the work folder "
                         f"with it (prepare(..., tokenizer_from={folder.parent}) / --init-from)")


def train_inverter(workdir: str | Path, settings: TrainSettings = TrainSettings(), *, stop_at: int | None = None,
                   with_gate: bool = True, init_from: str | Path | None = None) -> list[dict]:
    """Train (or resume) the inverter. init_from: an exported inverter folder to start from
    instead of the warm start (a run continued from committed weights: its tokenizer must be
    the work folder's)."""
    import torch

    from .modeling import InversionModule
    from .warmstart import bert_dir, warm_start_t5

    w = Path(workdir)
    info = _info(w)
    shape = ModelShape(**info["shape"])
    d = np.load(w / "data" / "ids.npz")
    ids, lengths, n_train = d["ids"], d["lengths"], int(d["n_train"])
    E = np.load(w / "data" / "embeddings.npy", mmap_mode="r")
    torch.manual_seed(settings.seed)
    model = InversionModule(shape.t5_config(), info["dim"], shape.num_repeat_tokens)
    fresh = not (w / "runs" / "inverter" / "state.pt").is_file()
    if init_from is not None and fresh:
        _same_tokenizer(w, Path(init_from))
        load_exported(model, init_from)
        _say(f"inverter: initialised from {init_from}")
    elif settings.warm_start != "none" and fresh:
        got = warm_start_t5(model.encoder_decoder, w / "t5" / "spiece.model", bert_dir(info["embedder"]),
                            settings.warm_start)
        _say(f"inverter: warm start from {info['embedder']}: {got}")
    bow, ul, sul = float(settings.bow_weight), float(settings.unlikelihood), float(settings.seq_unlikelihood)

    def loss_fn(m, idx, weight=bow, unlikelihood=ul, seq_unlikelihood=sul):
        dev = _on(m)
        e = torch.from_numpy(np.asarray(E[idx], dtype=np.float32)).to(dev)
        return m(e, _labels(torch, ids, lengths, idx, dev), weight, unlikelihood, seq_unlikelihood,
                 settings.seq_unlikelihood_rows)

    def val_fn(m):  # the token cross-entropy alone, comparable across recipes
        return _batched_val(lambda j: loss_fn(m, n_train + j, 0.0, 0.0, 0.0), len(ids) - n_train)

    return fit(model, loss_fn, lengths[:n_train], val_fn, settings, w / "runs" / "inverter", stop_at=stop_at,
               gate_fn=gate(w) if with_gate else None)


def _load_module(w: Path, kind: str):
    import torch

    from .modeling import CorrectorModule, InversionModule

    info = _info(w)
    shape = ModelShape(**info["shape"])
    if kind == "inverter":
        model = InversionModule(shape.t5_config(), info["dim"], shape.num_repeat_tokens)
    else:
        model = CorrectorModule(shape.t5_config(), info["dim"], shape.num_repeat_tokens,
                                copy_gate=_corrector_options(w / "runs" / "corrector")["copy_gate"])
    state = w / "runs" / kind / "state.pt"
    if not state.is_file():
        raise FileNotFoundError(f"{state}: train the {kind} first")
    best = w / "runs" / kind / "best.pt"  # the weights of the best gate, when a gate ran
    model.load_state_dict(torch.load(best if best.is_file() else state, map_location="cpu", weights_only=True)["model"])
    return model.eval()


def make_hypotheses(workdir: str | Path, n: int | None = None, batch: int = 512, extra: int = 0) -> None:
    """Greedy step-0 hypotheses (max_length = max_seq_length, as the correction loop makes
    them) of the exported inverter for `n` training texts drawn across the split (`spread`: the
    split keeps the corpus order) and every validation text, with their embeddings, all on the
    C core. extra: up to this many more hypotheses per
    training text, the other beams of a beam search of width extra + 1 that differ from the
    greedy one (the corrector then also learns from near misses it did not start from)."""
    from tqdm.auto import tqdm

    from ..embedders import load_embedder
    from ..models import _load_t5, _t5_dir, read_checkpoint
    from .. import _core
    from ..t5_tokenizer import T5Tokenizer

    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= 16:
        raise ValueError(f"extra: expected an int in [0, 16], got {extra!r}")
    w = Path(workdir)
    info = _info(w)
    export(w, w, only=("inverter",))
    ckpt = read_checkpoint(w / "inverter", "inverter")
    t5dir = _t5_dir(str(ckpt.config["model_name_or_path"]), ckpt.path)
    t5 = _load_t5(ckpt, t5dir, str(ckpt.config["model_name_or_path"]))
    inv = _core.Inverter(str(ckpt.weights), t5._core, ckpt.num_repeat_tokens)
    tok = T5Tokenizer.from_pretrained(t5dir)
    emb = load_embedder(info["embedder"])
    E = np.load(w / "data" / "embeddings.npy", mmap_mode="r")
    n_train = info["n_train"]
    L = int(info["shape"]["max_seq_length"])
    parts_rows, parts_ids = [], []
    for which, more in ((spread(n_train, n), extra), (n_train + np.arange(info["n_val"], dtype=np.int64), 0)):
        for i in tqdm(range(0, len(which), batch), desc="hypotheses", file=sys.stderr, dynamic_ncols=True):
            r = which[i:i + batch]
            x = inv.inputs(np.ascontiguousarray(E[r], dtype=np.float32))
            greedy = np.zeros((len(r), L), dtype=np.int32)
            out = t5.generate(inputs_embeds=x, max_length=L)
            greedy[:, :out.shape[1]] = out
            parts_rows.append(r)
            parts_ids.append(greedy)
            if more:
                k = more + 1
                beams = np.zeros((len(r) * k, L), dtype=np.int32)
                out = t5.generate(inputs_embeds=x, max_length=L, num_beams=k, num_return_sequences=k)
                beams[:, :out.shape[1]] = out
                beams = beams.reshape(len(r), k, L)
                keep_r, keep_ids = [], []
                for j in range(len(r)):
                    got = 0
                    for b in range(k):
                        if got < more and not (beams[j, b] == greedy[j]).all():
                            keep_r.append(r[j])
                            keep_ids.append(beams[j, b])
                            got += 1
                if keep_r:
                    parts_rows.append(np.array(keep_r))
                    parts_ids.append(np.stack(keep_ids))
    # training hypotheses first (greedy and extra ones), then the validation texts' greedy ones
    val_start = next(i for i, p in enumerate(parts_rows) if len(p) and p[0] >= n_train) if info["n_val"] else len(parts_rows)
    rows = np.concatenate(parts_rows).astype(np.int64)
    hyp = np.concatenate(parts_ids)
    n_hyp = int(sum(len(p) for p in parts_rows[:val_start]))
    hemb = np.zeros((len(rows), info["dim"]), dtype=np.float32)
    for i in tqdm(range(0, len(rows), 4 * batch), desc="hypothesis embeddings", file=sys.stderr, dynamic_ncols=True):
        texts = tok.batch_decode(hyp[i:i + 4 * batch], skip_special_tokens=True)
        hemb[i:i + len(texts)] = emb.encode(texts, batch_size=256, max_length=L)
    np.savez(w / "data" / "hypotheses.npz", rows=rows, ids=hyp, embeddings=hemb, n_train=n_hyp)


def _append_training(hfile: Path, h, new_rows, new_ids, new_emb) -> None:
    """Write hypotheses.npz again with these rows added at the end of its training part (the
    validation hypotheses, the gate's, stay last and unchanged)."""
    if not new_rows:
        return
    rows, hyp, hemb, n_hyp = h["rows"], h["ids"], h["embeddings"], int(h["n_train"])
    rows = np.concatenate([rows[:n_hyp], np.asarray(new_rows, dtype=rows.dtype), rows[n_hyp:]])
    hyp = np.concatenate([hyp[:n_hyp], np.stack(new_ids).astype(hyp.dtype), hyp[n_hyp:]])
    hemb = np.concatenate([hemb[:n_hyp], np.stack(new_emb).astype(np.float32), hemb[n_hyp:]])
    tmp = hfile.with_name("hypotheses.tmp.npz")
    np.savez(tmp, rows=rows, ids=hyp, embeddings=hemb, n_train=n_hyp + len(new_rows))
    tmp.replace(hfile)


def _training_hypotheses_seen(h) -> dict:
    """{training row: the set of its hypotheses' id rows (bytes)} of a hypotheses.npz."""
    n_hyp = int(h["n_train"])
    seen: dict = {}
    for r, ids in zip(h["rows"][:n_hyp].tolist(), h["ids"][:n_hyp]):
        seen.setdefault(r, set()).add(ids.tobytes())
    return seen


def _target_cosines(E, rows: np.ndarray, hemb: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """The cosine of each hypothesis embedding to its target's (E[rows]), chunk by chunk."""
    out = np.empty(len(rows), dtype=np.float32)
    for i in range(0, len(rows), chunk):
        t = np.asarray(E[rows[i:i + chunk]], dtype=np.float32)
        h = np.asarray(hemb[i:i + chunk], dtype=np.float32)
        den = np.linalg.norm(t, axis=1) * np.linalg.norm(h, axis=1)
        out[i:i + chunk] = (t * h).sum(1) / np.maximum(den, 1e-12)
    return out


def _corrector_options(run: Path) -> dict:
    """The options a corrector run was started with (runs/corrector/options.json): its architecture
    (copy_gate) and its training set (min_cosine)."""
    p = run / "options.json"
    got = json.loads(p.read_text()) if p.is_file() else {}
    mc = got.get("min_cosine")
    return {"copy_gate": bool(got.get("copy_gate", False)), "min_cosine": None if mc is None else float(mc)}


def edit_ids(tokens: np.ndarray, rate: float, pool: np.ndarray, rng) -> np.ndarray:
    """Token ids with random edits: each token, with probability `rate`, is substituted by a
    token drawn from `pool`, deleted, or followed by a token drawn from `pool` (equal odds); at
    least one edit is made, and at least one token is left."""
    t = np.asarray(tokens, dtype=np.int64)
    n = len(t)
    hit = rng.random(n) < rate
    op = rng.integers(3, size=n)
    drawn = np.asarray(pool, dtype=np.int64)[rng.integers(len(pool), size=max(n, 1))]
    if not hit.any():  # one substitution
        out = t.copy()
        if n:
            out[rng.integers(n)] = drawn[0]
        return out if n else drawn[:1]
    first = np.where(hit & (op == 0), drawn[:n], t)  # the token, or its substitute
    pairs = np.stack([first, drawn[:n]], axis=1)
    keep = np.stack([~(hit & (op == 1)), hit & (op == 2)], axis=1)  # deleted; an insertion after it
    out = pairs[keep]
    return out if len(out) else drawn[:1]


def add_edited_hypotheses(workdir: str | Path, n: int, *, rate: tuple[float, float] = (0.05, 0.5), seed: int = 2,
                          batch: int = 2048, copies: float = 0.0) -> int:
    """Add to data/hypotheses.npz hypotheses made by editing `n` training texts' own token ids
    (`spread` with `seed`): each text draws an edit rate uniformly in `rate`, and `edit_ids`
    substitutes, deletes and inserts tokens at that rate, drawing new tokens from the training
    texts' tokens (the corpus' own token frequencies). Their embeddings come from the embedder
    on the C core, of the decoded text, as the loop embeds a hypothesis. Near misses of every
    distance, most closer to their target than the inverter's hypotheses: they show the
    corrector hypotheses worth keeping in part, which it must fix rather than rewrite. A row
    (format of the loop's: the decoder's start token, the tokens, `</s>`, cut at
    max_seq_length) equal to one the file holds for that text is not added. copies: the
    fraction of the n texts (drawn at random) whose hypothesis is the text itself, unedited: a
    hypothesis already right, which the corrector must learn to keep (the loop keeps no earlier
    round, so a corrector that rewrites a right text loses it). Returns the number added."""
    from tqdm.auto import tqdm

    from ..embedders import load_embedder
    from ..t5_tokenizer import T5Tokenizer

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    if isinstance(copies, bool) or not isinstance(copies, (int, float)) or not 0.0 <= copies <= 1.0:
        raise ValueError(f"copies: expected a fraction in [0, 1], got {copies!r}")
    if (not isinstance(rate, (tuple, list)) or len(rate) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in rate)
            or not 0.0 < rate[0] <= rate[1] <= 1.0):
        raise ValueError(f"rate: expected (low, high) with 0 < low <= high <= 1, got {rate!r}")
    w = Path(workdir)
    info = _info(w)
    hfile = w / "data" / "hypotheses.npz"
    if not hfile.is_file():
        raise FileNotFoundError(f"{hfile}: make the inverter's hypotheses first (the hypotheses stage)")
    h = np.load(hfile)
    L, dtype = h["ids"].shape[1], h["ids"].dtype  # (each h[...] reads the array from the file again)
    seen = _training_hypotheses_seen(h)
    d = np.load(w / "data" / "ids.npz")
    ids, lengths = d["ids"], d["lengths"]
    n_train = int(info["n_train"])
    rng = np.random.default_rng(seed)
    sample = ids[rng.integers(n_train, size=min(n_train, 20000))]
    pool = sample[sample > 1]  # the training texts' tokens, pad and </s> left out
    if not len(pool):
        raise ValueError(f"{w / 'data' / 'ids.npz'}: the training texts hold no tokens to draw edits from")
    tok = T5Tokenizer.from_pretrained(w / "t5")
    emb = load_embedder(info["embedder"])
    pick = spread(n_train, n, seed)
    new_rows, new_ids, new_emb = [], [], []
    for i in tqdm(range(0, len(pick), batch), desc="edited hypotheses", file=sys.stderr, dynamic_ncols=True):
        rows, out = [], []
        for r in pick[i:i + batch].tolist():
            toks = ids[r, :max(0, int(lengths[r]) - 1)]  # without </s>
            copy = copies > 0 and bool(rng.random() < copies)  # (no draw when off: the same edits as before)
            e = (toks if copy else edit_ids(toks, float(rng.uniform(rate[0], rate[1])), pool, rng))[:L - 2]
            row = np.zeros(L, dtype=dtype)
            row[1:1 + len(e)] = e
            row[1 + len(e)] = 1
            key = row.tobytes()
            if (not copy and len(e) == len(toks) and (e == toks).all()) or key in seen.setdefault(r, set()):
                continue
            seen[r].add(key)
            rows.append(r)
            out.append(row)
        if not rows:
            continue
        texts = tok.batch_decode(np.stack(out), skip_special_tokens=True)
        new_emb += list(emb.encode(texts, batch_size=256, max_length=L))
        new_rows += rows
        new_ids += out
    _append_training(hfile, h, new_rows, new_ids, new_emb)
    _say(f"edited hypotheses: {len(new_rows)} added for {len(pick)} texts (edit rate {rate[0]}-{rate[1]}, "
         f"unedited copies {copies:g}); "
         f"{int(h['n_train']) + len(new_rows)} training hypotheses in all")
    return len(new_rows)


def add_corrected_hypotheses(workdir: str | Path, corrector: str | Path, n: int, *, rounds: int = 1,
                             beam: int = 1, batch: int = 256, seed: int = 1) -> int:
    """Add to data/hypotheses.npz the hypotheses that `rounds` correction rounds of an exported
    `corrector` (folder) make on the C core for `n` training texts drawn across the split
    (`spread` with `seed`), starting from the work folder's inverter: the texts the correction
    loop feeds the corrector from its second round on, which hypotheses made by the inverter
    alone never show it. Each round's hypothesis (the best-cosine row with sequence beam width
    `beam`, as the loop keeps it) is added once per text, unless it equals one the file already
    holds for that text; generation stops at the work folder's max_seq_length. The validation
    hypotheses stay the inverter's (the gate's start). Returns the number added."""
    from tqdm.auto import tqdm

    from ..models import load_corrector
    from .. import api

    for name, v, lo, hi in (("n", n, 1, None), ("rounds", rounds, 1, 20), ("beam", beam, 1, 16), ("batch", batch, 1, None)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            want = f"an int >= {lo}" if hi is None else f"an int in [{lo}, {hi}]"
            raise ValueError(f"{name}: expected {want}, got {v!r}")
    w, cfolder = Path(workdir), Path(corrector)
    info = _info(w)
    hfile = w / "data" / "hypotheses.npz"
    if not hfile.is_file():
        raise FileNotFoundError(f"{hfile}: make the inverter's hypotheses first (the hypotheses stage)")
    if not (cfolder / "config.json").is_file():
        raise FileNotFoundError(f"corrector: {cfolder} holds no config.json (an exported corrector folder expected)")
    _same_tokenizer(w, cfolder)
    if not (w / "inverter" / "config.json").is_file():
        export(w, w, only=("inverter",))
    corr = load_corrector(w / "inverter", cfolder)
    h = np.load(hfile)
    hyp, n_hyp = h["ids"], int(h["n_train"])
    L = hyp.shape[1]
    seen = _training_hypotheses_seen(h)
    E = np.load(w / "data" / "embeddings.npy", mmap_mode="r")
    pick = spread(int(info["n_train"]), n, seed)
    new_rows, new_ids, new_emb = [], [], []
    for i in tqdm(range(0, len(pick), batch), desc="corrected hypotheses", file=sys.stderr, dynamic_ncols=True):
        r = pick[i:i + batch]

        def keep(rnd, beams, ids, lengths, embs, cos, best, active, r=r):
            if rnd == 0:
                return
            at = np.arange(len(r)) * beams  # each text's kept row
            for j, row in enumerate(at):
                out = np.zeros(L, dtype=hyp.dtype)
                got = ids[row, :L]
                out[:len(got)] = got
                key = out.tobytes()
                if key not in seen.setdefault(int(r[j]), set()):
                    seen[int(r[j])].add(key)
                    new_rows.append(int(r[j]))
                    new_ids.append(out)
                    new_emb.append(np.array(embs[row], dtype=np.float32))

        api._run(np.ascontiguousarray(E[r], dtype=np.float32), corr, rounds, beam, on_round=keep, max_length=L,
                 progress=False)
    _append_training(hfile, h, new_rows, new_ids, new_emb)
    _say(f"corrected hypotheses: {len(new_rows)} added for {len(pick)} texts ({rounds} round(s), beam {beam}); "
         f"{n_hyp + len(new_rows)} training hypotheses in all")
    return len(new_rows)


def train_corrector(workdir: str | Path, settings: TrainSettings = TrainSettings(), *, stop_at: int | None = None,
                    with_gate: bool = True, init_from: str | Path | None = None,
                    blind: float = 0.0, copy_gate: bool | None = None,
                    min_cosine: float | None = None) -> list[dict]:
    """Train (or resume) the corrector on make_hypotheses' hypotheses: the target embedding, a
    hypothesis and its embedding in, the target text out. A fresh run starts from the trained
    inverter's T5 weights. with_gate: every evaluation also runs corrector_gate (one greedy
    correction round of the validation hypotheses) and best.pt keeps the weights of its best
    cosine. init_from: an exported corrector folder to start a fresh run from instead of the
    inverter (a run continued from committed weights when the work folder is gone: the weights
    carry over, the optimizer state and the schedule start again). blind: the fraction of
    training examples (drawn per step) whose target and hypothesis embeddings are replaced by
    zeros, so that only the hypothesis tokens tell the target: it forces the corrector to learn to
    read (copy) its hypothesis, which it otherwise never does (the embeddings alone predict the
    target as well as an inverter does, and copying is never discovered); 1: every example, a
    denoising stage on the tokens alone. copy_gate: a learnt bonus, at each decoder step, for the
    hypothesis' token of that step (CorrectorModule's option; written to the exported config as
    `copy_gate`); fixed when a run starts (None: the run's own on a resumed one, init_from's on a
    fresh one from an exported corrector, off otherwise); a corrector exported without it can start
    a run with it (the gate starts at zeros: the same outputs). min_cosine: train only on the
    hypotheses whose embedding has at least this cosine to their target's (the validation
    hypotheses stay all of them): hypotheses far from their target teach a language model rather
    than correction; fixed when a run starts, like copy_gate (None: the run's own; on a fresh run,
    every hypothesis).
    Returns the log rows."""
    import torch

    from .modeling import CorrectorModule

    if isinstance(blind, bool) or not isinstance(blind, (int, float)) or not 0.0 <= blind <= 1.0:
        raise ValueError(f"blind: expected a fraction in [0, 1], got {blind!r}")

    w = Path(workdir)
    info = _info(w)
    shape = ModelShape(**info["shape"])
    d = np.load(w / "data" / "ids.npz")
    ids, lengths = d["ids"], d["lengths"]
    h = np.load(w / "data" / "hypotheses.npz")
    rows, hyp, hemb, n = h["rows"], h["ids"], h["embeddings"], int(h["n_train"])
    E = np.load(w / "data" / "embeddings.npy", mmap_mode="r")
    hlen = np.maximum(1, (hyp != 0).sum(1) + 1)
    torch.manual_seed(settings.seed + 1)
    gen = torch.Generator().manual_seed(settings.seed + 2)
    if copy_gate is not None and not isinstance(copy_gate, bool):
        raise TypeError(f"copy_gate: expected True, False or None, got {copy_gate!r}")
    if min_cosine is not None and (isinstance(min_cosine, bool) or not isinstance(min_cosine, (int, float))
                                   or not -1.0 <= min_cosine < 1.0):
        raise ValueError(f"min_cosine: expected a cosine in [-1, 1) or None, got {min_cosine!r}")
    run = w / "runs" / "corrector"
    fresh = not (run / "state.pt").is_file()
    if fresh and copy_gate is None and init_from is not None:  # the exported corrector's own
        cfg = Path(init_from) / "config.json"
        copy_gate = bool(json.loads(cfg.read_text()).get("copy_gate", False)) if cfg.is_file() else False
    options = ({"copy_gate": bool(copy_gate), "min_cosine": None if min_cosine is None else float(min_cosine)}
               if fresh else _corrector_options(run))
    if not fresh and copy_gate is not None and options.get("copy_gate", False) != copy_gate:
        raise ValueError(f"copy_gate: the corrector run in {run} was started with copy_gate="
                         f"{options.get('copy_gate', False)}, got {copy_gate} (a run keeps its architecture)")
    if not fresh and min_cosine is not None and options.get("min_cosine") != float(min_cosine):
        raise ValueError(f"min_cosine: the corrector run in {run} was started with min_cosine="
                         f"{options.get('min_cosine')}, got {min_cosine:g} (a run keeps its training set)")
    train = np.arange(n)
    if options.get("min_cosine") is not None:
        train = np.flatnonzero(_target_cosines(E, rows[:n], hemb[:n]) >= options["min_cosine"])
        if len(train) < settings.batch_size:
            raise ValueError(f"min_cosine: {len(train)} of {n} training hypotheses have a cosine >= "
                             f"{options['min_cosine']:g} to their target, fewer than one batch of {settings.batch_size}")
        if len(train) < n:
            _say(f"corrector: {len(train)} of {n} training hypotheses have a cosine >= {options['min_cosine']:g}")
    if fresh:
        run.mkdir(parents=True, exist_ok=True)
        (run / "options.json").write_text(json.dumps(options) + "\n")
    model = CorrectorModule(shape.t5_config(), info["dim"], shape.num_repeat_tokens,
                            copy_gate=options.get("copy_gate", False))
    if init_from is not None and fresh:
        _same_tokenizer(w, Path(init_from))
        load_exported(model, init_from)
        _say(f"corrector: initialised from {init_from}")
    elif fresh:
        inv = _load_module(w, "inverter")
        model.encoder_decoder.load_state_dict(inv.encoder_decoder.state_dict())
        _say("corrector: T5 initialised from the trained inverter")

    def loss_fn(m, k):
        r, dev = rows[k], _on(m)
        e = torch.from_numpy(np.asarray(E[r], dtype=np.float32)).to(dev)
        he = torch.from_numpy(hemb[k]).to(dev)
        if blind > 0 and m.training:
            see = (torch.rand(len(k), 1, generator=gen) >= blind).to(dev, e.dtype)
            e, he = e * see, he * see
        hl = int(hlen[k].max())
        hi = torch.from_numpy(hyp[k, :hl].astype(np.int64)).to(dev)
        # the validation loss is the cross-entropy alone, comparable across recipes
        on = m.training
        return m(e, he, hi, _labels(torch, ids, lengths, r, dev), float(settings.unlikelihood) if on else 0.0,
                 float(settings.seq_unlikelihood) if on else 0.0, settings.seq_unlikelihood_rows)

    def val_fn(m):
        return _batched_val(lambda j: loss_fn(m, n + j), len(rows) - n)

    return fit(model, lambda m, k: loss_fn(m, train[k]), lengths[rows[train]], val_fn, settings, run, stop_at=stop_at,
               gate_fn=corrector_gate(w) if with_gate and len(rows) > n else None)


def _config_fields(kind: str, shape: ModelShape, embedder: str, t5_rel: str, copy_gate: bool = False) -> dict:
    extra = {"copy_gate": True} if copy_gate else {}  # vec2text's configs lack it: off
    return dict(**extra,
        architectures=["InversionModel" if kind == "inverter" else "CorrectorEncoderModel"],
        model_name_or_path=t5_rel,
        embedder_model_name=embedder,
        embedder_model_api=None,
        embedder_torch_dtype="float32",
        embedder_no_grad=True,
        embedder_fake_with_zeros=False,
        embedder_gaussian_noise_level=0.0,
        embeddings_from_layer_n=None,
        use_frozen_embeddings_as_input=False,
        encoder_dropout_disabled=False,
        decoder_dropout_disabled=False,
        use_lora=False,
        freeze_strategy="none",
        num_repeat_tokens=shape.num_repeat_tokens,
        max_seq_length=shape.max_seq_length,
        corrector_ignore_hypothesis_embedding=False,
        trained_by="vec2text_c.train",
    )


def export(workdir: str | Path, out_dir: str | Path, *, bf16: bool = True, only=("inverter", "corrector"),
           int8: Sequence[str] = ()) -> Path:
    """Write the trained models as vec2text checkpoints under out_dir: t5/ (tokenizer + T5
    config), inverter/, corrector/ (config.json with model_name_or_path "../t5", and
    model.safetensors with the lm_head stored explicitly).

    bf16: matrices as bfloat16 (vectors stay float32). int8: name patterns (fnmatch, e.g.
    "embedding_transform_*.3.weight") of matrices stored as int8 by rows instead, with a float32
    scale per row: a quarter of their float32 size, read back by the C core and by training's
    `init_from`, but not by transformers or vec2text."""
    import fnmatch
    import shutil

    from .._safetensors_io import BF16, Int8Rows, save_file

    if isinstance(int8, str) or not all(isinstance(p, str) for p in int8):
        raise TypeError(f"int8: expected a sequence of name patterns, got {int8!r}")
    w, out = Path(workdir), Path(out_dir)
    info = _info(w)
    shape = ModelShape(**info["shape"])
    files, matched = {}, set()
    for kind in only:  # every tensor converted before anything is written
        tensors = {}
        for name, t in _load_module(w, kind).state_dict().items():
            if name.endswith("embed_tokens.weight"):
                continue  # aliases of encoder_decoder.shared.weight
            a = t.detach().float().numpy()
            hits = [p for p in int8 if fnmatch.fnmatchcase(name, p)]
            if hits and a.ndim == 2:
                matched.update(hits)
                tensors[name] = Int8Rows(a)
            else:
                tensors[name] = BF16(a) if bf16 and a.ndim == 2 else a.astype(np.float32)
        files[kind] = tensors
    unused = [p for p in int8 if p not in matched]
    if unused:
        raise ValueError(f"int8: the patterns {unused} match no matrix of the exported models {list(only)}")
    if out.resolve() != w.resolve():
        (out / "t5").mkdir(parents=True, exist_ok=True)
        for f in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
            shutil.copyfile(w / "t5" / f, out / "t5" / f)
    for kind, tensors in files.items():
        d = out / kind
        d.mkdir(parents=True, exist_ok=True)
        save_file(tensors, d / "model.safetensors", metadata={"format": "pt"})
        gate = kind == "corrector" and _corrector_options(w / "runs" / "corrector").get("copy_gate", False)
        cfg = _config_fields(kind, shape, info["embedder"], "../t5", gate)
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return out
