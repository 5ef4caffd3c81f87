"""The BERT encoder on the C core (`vec2text_c._core.Bert`), loaded from a transformers directory."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import _core
from .weights import weights_file

__all__ = ["BertModel"]

_ACTS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


def read_bert_config(model_dir: str | os.PathLike) -> dict:
    """config.json of a BERT directory, checked for what the C encoder implements."""
    d = Path(model_dir)
    path = d / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{d}: no config.json, so this is not a transformers model directory")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    mt = cfg.get("model_type")
    if mt != "bert":
        raise NotImplementedError(f"{path}: model_type {mt!r} is not supported by the BERT encoder (expected 'bert')")
    pet = cfg.get("position_embedding_type", "absolute")
    if pet != "absolute":
        raise NotImplementedError(f"{path}: position_embedding_type {pet!r} is not supported (expected 'absolute')")
    if cfg.get("is_decoder"):
        raise NotImplementedError(f"{path}: a BERT decoder (is_decoder=true) is not supported")
    act = cfg.get("hidden_act", "gelu")
    if act not in _ACTS:
        raise NotImplementedError(f"{path}: hidden_act {act!r} is not supported (expected one of {', '.join(_ACTS)})")
    return cfg


class BertModel:
    """BERT encoder: `forward` gives the final hidden states like transformers' `BertModel`
    (`last_hidden_state`), `embed` pools them into sentence vectors. Immutable; safe to share
    between threads (each call has its own state and releases the GIL)."""

    def __init__(self, model_dir: str | os.PathLike):
        self.path = Path(model_dir)
        cfg = read_bert_config(self.path)
        weights = weights_file(self.path)
        defaults = dict(type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu", max_position_embeddings=512)
        c = {**defaults, **cfg}
        try:
            self._core = _core.Bert(
                str(weights),
                vocab_size=int(c["vocab_size"]),
                hidden_size=int(c["hidden_size"]),
                num_hidden_layers=int(c["num_hidden_layers"]),
                num_attention_heads=int(c["num_attention_heads"]),
                intermediate_size=int(c["intermediate_size"]),
                max_position_embeddings=int(c["max_position_embeddings"]),
                type_vocab_size=int(c["type_vocab_size"]),
                layer_norm_eps=float(c["layer_norm_eps"]),
                hidden_act=c["hidden_act"],
            )
        except KeyError as e:
            raise ValueError(f"{self.path / 'config.json'}: missing {e.args[0]!r}") from None
        self.config = cfg

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike) -> "BertModel":
        """A BERT encoder from a sentence-transformers / transformers folder (config.json and
        safetensors weights), run on the C core."""
        return cls(model_dir)

    def __reduce__(self):
        return (BertModel, (str(self.path),))

    @property
    def hidden_size(self) -> int:
        """The width of the hidden states (384 for all-MiniLM-L6-v2)."""
        return self._core.hidden_size

    @property
    def max_position_embeddings(self) -> int:
        """The longest input, in tokens, the position embeddings cover."""
        return self._core.max_position_embeddings

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> np.ndarray:
        """input_ids, attention_mask, token_type_ids: [B, T] integers -> float32 [B, T, hidden_size]."""
        return self._core.forward(input_ids, attention_mask, token_type_ids)

    __call__ = forward

    def embed(self, input_ids, attention_mask=None, token_type_ids=None, pooling: str = "mean",
              normalize: bool = False) -> np.ndarray:
        """Sentence vectors [B, hidden_size]: masked mean ("mean") or first token ("cls"),
        optionally L2-normalised."""
        return self._core.embed(input_ids, attention_mask, token_type_ids, pooling=pooling, normalize=normalize)

    def __repr__(self) -> str:
        return f"BertModel({str(self.path)!r}, hidden_size={self.hidden_size})"
