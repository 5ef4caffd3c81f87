"""T5 encoder-decoder on the C core, loaded from a transformers-style directory.

`T5Model.from_pretrained(path)` reads `config.json` (here, in Python) and the weights from
`model.safetensors` (the C core maps and validates the file and prepacks every matmul once).
The model is immutable after loading; every call releases the GIL, so threads may share it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from .weights import weights_file

__all__ = ["T5Config", "T5Model"]

# feed_forward_proj -> (gated, activation), as transformers' T5Config interprets it
_FEED_FORWARD = {
    "relu": (False, "relu"),
    "gated-relu": (True, "relu"),
    "gelu": (False, "gelu"),
    "gated-gelu": (True, "gelu_new"),
}


@dataclass(frozen=True)
class T5Config:
    """The fields of a transformers T5Config that the C core uses (defaults as transformers')."""

    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    num_heads: int = 8
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int = 6
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    feed_forward_proj: str = "relu"
    tie_word_embeddings: bool = True
    layer_norm_epsilon: float = 1e-6
    decoder_start_token_id: int = 0
    eos_token_id: int = 1
    pad_token_id: int = 0
    max_length: int = 512

    @classmethod
    def from_dict(cls, d: dict[str, Any], max_length: int | None = None) -> "T5Config":
        """The fields of a config.json dict, each checked: integers must be JSON integers (not
        strings, floats or booleans) within bounds far above any published T5, booleans must be
        booleans; the message names the field and the value."""

        def integer(key: str, default, lo: int, hi: int) -> int:
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"config.json: {key} must be an integer, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"config.json: {key} must be in [{lo}, {hi}], got {v}")
            return int(v)

        def flag(key: str, default: bool) -> bool:
            v = d.get(key, default)
            if not isinstance(v, bool):
                raise ValueError(f"config.json: {key} must be true or false, got {v!r}")
            return v

        def token(key: str, default: int) -> int:
            return default if d.get(key) is None else integer(key, default, 0, (1 << 24) - 1)

        num_layers = integer("num_layers", cls.num_layers, 1, 1 << 10)
        num_decoder_layers = num_layers if d.get("num_decoder_layers") is None else integer(
            "num_decoder_layers", None, 1, 1 << 10)
        ff = d.get("feed_forward_proj", cls.feed_forward_proj)
        if not isinstance(ff, str) or ff not in _FEED_FORWARD:
            raise NotImplementedError(
                f"config.json: feed_forward_proj {ff!r} is not supported; expected one of {sorted(_FEED_FORWARD)}"
            )
        if max_length is None:
            n_pos = d.get("n_positions")
            max_length = max(integer("n_positions", 512, 1, 1 << 20) if n_pos is not None else 512, 512)
        eps = d.get("layer_norm_epsilon", cls.layer_norm_epsilon)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0 <= eps < 1):
            raise ValueError(f"config.json: layer_norm_epsilon must be a number in [0, 1), got {eps!r}")
        return cls(
            vocab_size=integer("vocab_size", cls.vocab_size, 1, 1 << 24),
            d_model=integer("d_model", cls.d_model, 1, 1 << 16),
            d_kv=integer("d_kv", cls.d_kv, 1, 1 << 12),
            num_heads=integer("num_heads", cls.num_heads, 1, 1 << 12),
            d_ff=integer("d_ff", cls.d_ff, 1, 1 << 18),
            num_layers=num_layers,
            num_decoder_layers=num_decoder_layers,
            relative_attention_num_buckets=integer("relative_attention_num_buckets",
                                                   cls.relative_attention_num_buckets, 4, 1 << 12),
            relative_attention_max_distance=integer("relative_attention_max_distance",
                                                    cls.relative_attention_max_distance, 1, 1 << 20),
            feed_forward_proj=ff,
            tie_word_embeddings=flag("tie_word_embeddings", True),
            layer_norm_epsilon=float(eps),
            decoder_start_token_id=token("decoder_start_token_id", 0),
            eos_token_id=token("eos_token_id", 1),
            pad_token_id=token("pad_token_id", 0),
            max_length=int(max_length),
        )

    def core_kwargs(self) -> dict[str, Any]:
        """The config as the C core's T5 constructor takes it (feed_forward_proj split into
        the gated flag and the activation)."""
        gated, act = _FEED_FORWARD[self.feed_forward_proj]
        kw = asdict(self)
        del kw["feed_forward_proj"]
        kw.update(gated=gated, act=act)
        return kw


class T5Model:
    """A T5 encoder-decoder (or encoder only) running on the vec2text_c C core.

    Arrays in, arrays out: ids as int32/int64 NumPy arrays or anything with ``__array__``
    (torch tensors), masks of 0/1 (integers or booleans), embeddings as floating arrays.
    """

    def __init__(self, weights: str | os.PathLike, config: T5Config, prefix: str = "", encoder_only: bool = False,
                 dtype: str = "float32"):
        self._weights = os.fspath(weights)
        self._config = config
        self._prefix = prefix
        self._encoder_only = bool(encoder_only)
        self._dtype = dtype
        self._core = _core.T5(self._weights, prefix, encoder_only=self._encoder_only, dtype=dtype,
                              **config.core_kwargs())

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        encoder_only: bool | None = None,
        max_length: int | None = None,
        prefix: str = "",
        dtype: str = "float32",
    ) -> "T5Model":
        """Load a transformers-style directory: ``config.json`` + ``model.safetensors``.

        encoder_only: load only the encoder (default: when config.json names T5EncoderModel).
        max_length: longest sequence accepted (default: the config's n_positions, at least 512).
        prefix: tensor name prefix inside the file (e.g. "encoder_decoder." in vec2text checkpoints).
        dtype: "float32" (default; matches transformers to ~1e-5) or "bfloat16": matmul weights
            stored in bf16 and inputs rounded to bf16 with f32 accumulation (half the weight bytes,
            AVX512-BF16 / AMX kernels; results differ from fp32 at the bf16 rounding level).
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: not a directory (expected config.json + model.safetensors)")
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{path}: config.json not found")
        with open(cfg_file, encoding="utf-8") as f:
            d = json.load(f)
        if encoder_only is None:
            encoder_only = list(d.get("architectures") or []) == ["T5EncoderModel"]
        return cls(weights_file(path), T5Config.from_dict(d, max_length), prefix, encoder_only, dtype)

    def __reduce__(self):
        # picklable by reference: a worker re-creates the model from its files
        return (self.__class__, (self._weights, self._config, self._prefix, self._encoder_only, self._dtype))

    @property
    def config(self) -> T5Config:
        """The T5Config the model was built from."""
        return self._config

    @property
    def d_model(self) -> int:
        """The width of the hidden states."""
        return self._config.d_model

    @property
    def vocab_size(self) -> int:
        """The rows of the shared token embedding."""
        return self._config.vocab_size

    @property
    def encoder_only(self) -> bool:
        """Whether only the encoder was loaded (as for an embedder such as GTR)."""
        return self._encoder_only

    def encode(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> np.ndarray:
        """Encoder final hidden states (after the final RMSNorm), float32 [B, T, d_model].

        Exactly one of input_ids [B, T] / inputs_embeds [B, T, d_model]; attention_mask [B, T]
        defaults to all ones.
        """
        return self._core.encode(input_ids, attention_mask, inputs_embeds)

    def decoder_logits(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        decoder_input_ids=None,
        *,
        encoder_hidden_states=None,
        stepwise: bool = False,
    ) -> np.ndarray:
        """Teacher-forced decoder logits, float32 [B, L, vocab].

        The source is one of input_ids / inputs_embeds (run through the encoder) or
        encoder_hidden_states (an earlier `encode` result). decoder_input_ids [B, L] usually
        start with the decoder start id. stepwise=True runs one cached decoder step per position
        (the generation path) instead of one causal pass; both give the same logits.
        """
        if decoder_input_ids is None:
            raise ValueError("decoder_input_ids: required, got None")
        return self._core.decoder_logits(
            decoder_input_ids,
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states,
            stepwise=stepwise,
        )

    def generate(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        max_length: int = 20,
        num_beams: int = 1,
        num_return_sequences: int = 1,
        length_penalty: float = 1.0,
        early_stopping: bool | str = False,
        *,
        encoder_hidden_states=None,
    ) -> np.ndarray:
        """Token ids as transformers' ``generate`` returns them (no sampling), int64
        [B * num_return_sequences, L].

        The source is one of input_ids [B, T] / inputs_embeds [B, T, d_model] (run through the
        encoder, attention_mask [B, T] defaulting to all ones) or encoder_hidden_states (an
        earlier `encode` result). num_beams=1 is greedy search, otherwise beam search keeping
        num_return_sequences <= num_beams hypotheses per input (example-major rows).
        max_length counts the decoder start token; every row starts with it, ends with eos when
        it finished early and is padded with the pad id to the longest row (L <= max_length).
        length_penalty and early_stopping (True, False or "never") act as in transformers.
        The decoder start, eos and pad ids come from the model's config. Releases the GIL.
        """
        ids, _scores = self._core.generate(
            input_ids,
            attention_mask,
            inputs_embeds,
            encoder_hidden_states,
            max_length=max_length,
            num_beams=num_beams,
            num_return_sequences=num_return_sequences,
            length_penalty=length_penalty,
            early_stopping=early_stopping,
        )
        return ids

    def __repr__(self) -> str:
        c = self._config
        kind = "encoder-only" if self._encoder_only else "encoder-decoder"
        return (
            f"T5Model({kind}, d_model={c.d_model}, layers={c.num_layers}/{c.num_decoder_layers}, "
            f"heads={c.num_heads}, ff={c.feed_forward_proj}, vocab={c.vocab_size}, weights={self._weights!r})"
        )
