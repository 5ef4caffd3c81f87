"""Warm-starting an inverter's T5 from the BERT embedder it inverts (all-MiniLM-L6-v2).

Two levels, chosen by `TrainSettings.warm_start`:

- "embeddings": every SentencePiece piece of the T5 vocabulary gets the mean of the BERT word
  embeddings of its WordPiece tokens (a piece that continues a word is looked up as `##piece`
  first); `<pad>`, `</s>`, `<unk>` take `[PAD]`, `[SEP]`, `[UNK]`. The matrix is scaled to unit
  standard deviation, T5's own initial scale, and serves as the tied input / output embedding.
- "layers": the embeddings, and the BERT layers' attention and feed-forward weights copied into
  T5 blocks (the BERT2BERT recipe): query / key / value / output projections (the query scaled by
  1/sqrt(d_kv), since T5 attention does not scale), the feed-forward pair restricted to the
  `d_ff` hidden units with the largest weight norms. Biases and the post-norm LayerNorms have no
  T5 counterpart and are left out; cross-attention and position biases start at T5's random
  init. The T5 is not the BERT function: the copy is an initialisation, measured against the
  random one in the README.

Encoder blocks take the top BERT layers and decoder blocks the bottom ones by default (the
encoder reads the pooled sentence vector, the decoder writes words).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["WARM_STARTS", "bert_dir", "check_shape", "piece_embeddings", "warm_start_t5"]

WARM_STARTS = ("none", "embeddings", "layers")


def bert_dir(embedder: str) -> Path:
    """The folder that holds the embedder's BERT weights (model.safetensors) and vocab."""
    from ..embedders import _packaged_minilm

    p = Path(embedder)
    if not p.is_dir():
        if embedder.split("/")[-1] != "all-MiniLM-L6-v2":
            raise ValueError(f"warm_start: needs the embedder's BERT weights on disk; {embedder!r} is neither a "
                             "folder nor all-MiniLM-L6-v2 (use warm_start='none')")
        p = _packaged_minilm()
    for d in (p, *sorted(x for x in p.iterdir() if x.is_dir())):
        if (d / "model.safetensors").is_file() and (d / "config.json").is_file():
            return d
    raise FileNotFoundError(f"{p}: no model.safetensors + config.json of a BERT model found for warm_start")


def _bert_tensors(d: Path) -> tuple[dict, dict]:
    """The BERT's tensors as float32 NumPy arrays (names without a leading `bert.`; fp32 or
    bf16 files) and its config."""
    from safetensors.torch import load_file

    t = load_file(str(d / "model.safetensors"))
    t = {(k[len("bert."):] if k.startswith("bert.") else k): v.float().numpy() for k, v in t.items()}
    return t, json.loads((d / "config.json").read_text())


class _HFWordPiece:
    """The BERT tokenizer through the `tokenizers` library (tokenizer.json), for machines
    without the C core: the same two calls piece_embeddings makes of WordPieceTokenizer."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(path))

    def vocab(self) -> dict:
        return self.tok.get_vocab()

    def encode(self, text: str, add_special_tokens: bool = False) -> list:
        return self.tok.encode(text, add_special_tokens=add_special_tokens).ids


def _wordpiece(bert: Path):
    try:
        from ..tokenizers import WordPieceTokenizer
    except ImportError:  # loaded outside the package (tools/device_train.py): no C core
        return _HFWordPiece(bert / "tokenizer.json")
    return WordPieceTokenizer.from_pretrained(bert)


def piece_embeddings(sp_model: Path, bert: Path, wordpiece=None) -> np.ndarray:
    """[V, H] float32: each SentencePiece id's BERT word embedding (mean over its WordPieces),
    scaled to unit standard deviation. wordpiece: the BERT tokenizer (default: the C core's
    WordPieceTokenizer, else the `tokenizers` library's)."""
    import sentencepiece as spm

    t, _ = _bert_tensors(bert)
    W = t["embeddings.word_embeddings.weight"]
    wp = _wordpiece(bert) if wordpiece is None else wordpiece
    if hasattr(wp, "vocab") and callable(wp.vocab):
        vocab = wp.vocab()
    else:
        vocab = {tok: i for i, tok in enumerate(wp.convert_ids_to_tokens(list(range(wp.vocab_size))))}
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    out = np.zeros((sp.get_piece_size(), W.shape[1]), dtype=np.float32)
    special = {0: "[PAD]", 1: "[SEP]", 2: "[UNK]"}
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if i in special:
            ids = [vocab[special[i]]]
        elif piece.startswith("\u2581"):
            ids = wp.encode(piece[1:], add_special_tokens=False) if piece[1:] else [vocab["[SEP]"]]
        elif "##" + piece.lower() in vocab:
            ids = [vocab["##" + piece.lower()]]
        else:
            ids = wp.encode(piece, add_special_tokens=False)
        out[i] = W[ids].mean(0) if ids else W[vocab["[UNK]"]]
    return out / out.std()


def check_shape(t5_config: dict, bert: Path, level: str) -> None:
    """Raise a ValueError when a T5 of `t5_config` cannot take the `level` warm start from the
    BERT in `bert` (reads its config only, so it can run before any data is prepared)."""
    if level not in WARM_STARTS:
        raise ValueError(f"warm_start: expected one of {WARM_STARTS}, got {level!r}")
    if level == "none":
        return
    cfg = json.loads((Path(bert) / "config.json").read_text())
    d, h = int(t5_config["d_model"]), int(cfg["hidden_size"])
    if d != h:
        raise ValueError(f"warm_start: the T5 d_model {d} must equal the BERT hidden size {h} "
                         "(use warm_start 'none' for another width)")
    heads, d_kv = int(t5_config["num_heads"]), int(t5_config.get("d_kv", d // int(t5_config["num_heads"])))
    want = int(cfg["num_attention_heads"])
    if level == "layers" and (heads != want or heads * d_kv != d):
        raise ValueError(f"warm_start='layers': the T5 needs {want} heads of {h // want}, it has {heads} of {d_kv} "
                         "(use warm_start 'embeddings' or 'none')")
    if level == "layers" and int(t5_config["d_ff"]) > int(cfg["intermediate_size"]):
        raise ValueError(f"warm_start='layers': d_ff {t5_config['d_ff']} exceeds the BERT intermediate size "
                         f"{cfg['intermediate_size']}")


def _layer(t: dict, i: int) -> dict:
    p = f"encoder.layer.{i}."
    return {k[len(p):]: v for k, v in t.items() if k.startswith(p)}


def warm_start_t5(t5, sp_model: Path, bert: Path, level: str, *, encoder_layers=None, decoder_layers=None) -> dict:
    """Copy the BERT weights into the transformers T5ForConditionalGeneration `t5` in place.
    Returns a summary {"embeddings": V, "encoder": [bert layer per block], "decoder": [...]}."""
    import torch

    check_shape(t5.config.to_dict(), bert, level)
    if level == "none":
        return {}
    t, cfg = _bert_tensors(bert)
    c = t5.config
    E = piece_embeddings(sp_model, bert)
    if E.shape[0] != c.vocab_size:
        raise ValueError(f"warm_start: {sp_model} has {E.shape[0]} pieces, the T5 vocab_size is {c.vocab_size}")
    with torch.no_grad():
        t5.shared.weight.copy_(torch.from_numpy(E))
    summary = {"embeddings": int(E.shape[0])}
    if level == "embeddings":
        return summary
    n_bert = int(cfg["num_hidden_layers"])
    n_enc, n_dec = c.num_layers, c.num_decoder_layers
    enc = list(encoder_layers) if encoder_layers is not None else list(range(n_bert - n_enc, n_bert))
    dec = list(decoder_layers) if decoder_layers is not None else list(range(n_dec))
    if len(enc) != n_enc or len(dec) != n_dec or not all(0 <= i < n_bert for i in enc + dec):
        raise ValueError(f"warm_start: layer lists {enc} / {dec} do not fit {n_enc} / {n_dec} blocks of a "
                         f"{n_bert}-layer BERT")
    scale = 1.0 / np.sqrt(c.d_kv)

    def attention(att, b):
        att.q.weight.copy_(torch.from_numpy(b["attention.self.query.weight"] * scale))
        att.k.weight.copy_(torch.from_numpy(b["attention.self.key.weight"]))
        att.v.weight.copy_(torch.from_numpy(b["attention.self.value.weight"]))
        att.o.weight.copy_(torch.from_numpy(b["attention.output.dense.weight"]))

    def feed_forward(ff, b):
        wi, wo = b["intermediate.dense.weight"], b["output.dense.weight"]  # [F, H], [H, F]
        keep = np.sort(np.argsort(-(np.linalg.norm(wi, axis=1) * np.linalg.norm(wo, axis=0)))[:c.d_ff])
        ff.wi.weight.copy_(torch.from_numpy(np.ascontiguousarray(wi[keep])))
        ff.wo.weight.copy_(torch.from_numpy(np.ascontiguousarray(wo[:, keep])))

    with torch.no_grad():
        for block, i in zip(t5.encoder.block, enc):
            b = _layer(t, i)
            attention(block.layer[0].SelfAttention, b)
            feed_forward(block.layer[1].DenseReluDense, b)
        for block, i in zip(t5.decoder.block, dec):
            b = _layer(t, i)
            attention(block.layer[0].SelfAttention, b)
            feed_forward(block.layer[2].DenseReluDense, b)
    summary.update(encoder=enc, decoder=dec)
    return summary
