"""vec2text's GTR embedder (`gtr_base`): the T5 encoder of sentence-transformers/gtr-t5-base,
then the masked mean of its final hidden states. No Dense layer and no L2 normalisation:
vec2text uses `AutoModel.from_pretrained(...).encoder` directly, not the sentence-transformers
pipeline (which would add Dense 768->768 and Normalize, a different space).

`load_gtr_embedder(dir)`, also reached as `load_embedder(dir, recipe="gtr")`, takes a directory
with a T5 encoder (`config.json` + weights; the root of sentence-transformers/gtr-t5-base, or a
T5EncoderModel / T5Model save) and its T5 tokenizer (`spiece.model`, optionally
`tokenizer.json`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .t5 import T5Model
from .t5_tokenizer import T5Tokenizer

__all__ = ["T5MeanEncoder", "load_gtr_embedder"]


class T5MeanEncoder:
    """A T5 encoder with masked-mean pooling, in the interface `Embedder` expects:
    `embed(ids, mask, pooling="mean", normalize=False)`, `hidden_size`, `max_position_embeddings`."""

    def __init__(self, model: T5Model):
        self.model = model

    @property
    def hidden_size(self) -> int:
        return self.model.d_model

    @property
    def max_position_embeddings(self) -> int:
        return self.model.config.max_length

    def embed(self, input_ids, attention_mask=None, pooling: str = "mean", normalize: bool = False) -> np.ndarray:
        if pooling != "mean":
            raise ValueError(f"pooling: the GTR recipe uses 'mean', got {pooling!r}")
        ids = np.asarray(input_ids)
        mask = np.ones(ids.shape, dtype=np.int32) if attention_mask is None else np.asarray(attention_mask, dtype=np.int32)
        h = self.model.encode(ids, mask)  # [B, T, D]
        m = mask.astype(np.float32)[..., None]
        out = (h * m).sum(axis=1) / m.sum(axis=1)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32, copy=False)

    def __reduce__(self):
        return (T5MeanEncoder, (self.model,))


def _max_seq_length(d: Path) -> int:
    for cfg in (d / "sentence_bert_config.json",):
        if cfg.is_file():
            try:
                v = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
            except json.JSONDecodeError:
                v = None
            if v:
                return int(v)
    return 512


def load_gtr_embedder(path: str | os.PathLike, spec: tuple | None = None):
    """The GTR recipe as an `Embedder` (encode(texts, batch_size, max_length) -> [N, D])."""
    from .embedders import Embedder

    d = Path(path)
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d}: expected a T5 encoder directory (config.json + weights + spiece.model)")
    model = T5Model.from_pretrained(d, encoder_only=True)
    tokenizer = T5Tokenizer.from_pretrained(d)
    return Embedder(
        T5MeanEncoder(model),
        tokenizer,
        pooling="mean",
        normalize=False,
        max_seq_length=_max_seq_length(d),
        spec=spec if spec is not None else (os.fspath(d), "gtr"),
    )


def _register_recipe() -> None:
    """Make `load_embedder(path, recipe="gtr")` build this recipe."""
    from . import embedders

    embedders.RECIPES["gtr"] = lambda d, spec: load_gtr_embedder(d, spec)


_register_recipe()
