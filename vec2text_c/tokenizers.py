"""Tokenizers with a C core.

`WordPieceTokenizer` is BERT's uncased WordPiece (as all-MiniLM-L6-v2 uses it), giving the ids
transformers' tokenizer of the same directory gives. The work happens in C
(`vec2text_c._core.WordPiece`, GIL released); this module reads the directory's configuration
and shapes the output like transformers does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ._jsonfile import read_json
from . import _core

__all__ = ["WordPieceTokenizer"]

_DEFAULT_SPECIALS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}

# Per-token clean-up of the WordPiece decoder (tokenizers' `cleanup=True`), and transformers'
# whole-string `clean_up_tokenization`.
_DECODER_CLEANUP = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
    (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)
_STRING_CLEANUP = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
    (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)


def _token_text(tok) -> str:
    """A special token as written in tokenizer configs: a string or an AddedToken dict."""
    if isinstance(tok, dict):
        return tok.get("content")
    return tok




def _check_texts(texts, name: str = "texts") -> list:
    if isinstance(texts, (str, np.str_)):
        return [str(texts)]
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError(f"{name}: expected str or a list of str, got {type(texts).__name__}")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name}: expected str or a list of str, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}]: expected str, got {type(t).__name__}")
    return texts


class WordPieceTokenizer:
    """BERT WordPiece tokenizer.

    Build it with `from_pretrained(directory)` (a transformers / sentence-transformers model
    directory holding `tokenizer.json` and/or `vocab.txt`) or directly from a vocabulary file.
    Calling it returns `input_ids`, `token_type_ids` and `attention_mask` as int64 arrays
    `[N, T]`, as transformers does with `return_tensors="np"`.
    """

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        *,
        vocab: Sequence[str] | None = None,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        clean_text: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        special_tokens: Iterable[str] | None = None,
        max_input_chars_per_word: int = 100,
        continuing_subword_prefix: str = "##",
        model_max_length: int | None = None,
        decoder_cleanup: bool = True,
    ):
        if (vocab_file is None) == (vocab is None):
            raise TypeError("WordPieceTokenizer: give exactly one of vocab_file (a vocab.txt path) or vocab (a list of tokens)")
        if strip_accents is None:
            strip_accents = do_lower_case
        specials = [cls_token, sep_token, pad_token, unk_token, mask_token]
        if special_tokens is not None:
            specials = list(dict.fromkeys([*specials, *special_tokens]))
        specials = [s for s in specials if s]
        kwargs = dict(
            lowercase=bool(do_lower_case),
            strip_accents=bool(strip_accents),
            clean_text=bool(clean_text),
            handle_chinese_chars=bool(tokenize_chinese_chars),
            max_input_chars_per_word=int(max_input_chars_per_word),
            unk_token=unk_token,
            cls_token=cls_token,
            sep_token=sep_token,
            pad_token=pad_token,
            special_tokens=specials,
            continuing_prefix=continuing_subword_prefix,
        )
        if vocab_file is not None:
            path = Path(vocab_file)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: vocabulary file not found")
            self._wp = _core.WordPiece(str(path), **kwargs)
            self._source = str(path)
        else:
            vocab = list(vocab)
            for i, t in enumerate(vocab):
                if not isinstance(t, str):
                    raise TypeError(f"vocab[{i}]: expected str, got {type(t).__name__}")
                if "\n" in t:
                    raise ValueError(f"vocab[{i}]: a token may not contain a newline, got {t!r}")
            self._wp = _core.WordPiece(vocab_text="\n".join(vocab), **kwargs)
            self._source = "<vocab list>"
        self.mask_token = mask_token
        self.unk_token, self.sep_token, self.pad_token, self.cls_token = unk_token, sep_token, pad_token, cls_token
        self.model_max_length = model_max_length
        self.decoder_cleanup = decoder_cleanup
        self._prefix = continuing_subword_prefix
        self._special_ids = {self._wp.token_to_id(s) for s in specials} - {None}
        self._vocab: list[str] | None = None

    # ---- construction from a model directory ----

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "WordPieceTokenizer":
        """Load from a model directory: `tokenizer.json` when present (what transformers'
        fast tokenizer reads), otherwise `vocab.txt` with `tokenizer_config.json`."""
        d = Path(path)
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: tokenizer directory not found")
        tcfg = read_json(d / "tokenizer_config.json") if (d / "tokenizer_config.json").is_file() else {}
        smap = read_json(d / "special_tokens_map.json") if (d / "special_tokens_map.json").is_file() else {}
        tokens = dict(_DEFAULT_SPECIALS)
        for src in (tcfg, smap):
            for k in tokens:
                if src.get(k) is not None:
                    tokens[k] = _token_text(src[k])
        extra = [_token_text(t) for t in smap.get("additional_special_tokens", tcfg.get("additional_special_tokens", []))]
        mml = tcfg.get("model_max_length")
        model_max_length = int(mml) if isinstance(mml, (int, float)) and mml < 1e12 else None

        if (d / "tokenizer.json").is_file():
            return cls._from_tokenizer_json(d / "tokenizer.json", tokens, extra, model_max_length)
        if not (d / "vocab.txt").is_file():
            raise FileNotFoundError(f"{d}: no tokenizer.json or vocab.txt, so no WordPiece vocabulary to load")
        tclass = tcfg.get("tokenizer_class")
        if tclass is not None and not str(tclass).startswith(("Bert", "DistilBert")):
            raise NotImplementedError(f"{d}: tokenizer_class {tclass!r} is not a BERT WordPiece tokenizer")
        return cls(
            d / "vocab.txt",
            do_lower_case=tcfg.get("do_lower_case", True),
            strip_accents=tcfg.get("strip_accents"),
            tokenize_chinese_chars=tcfg.get("tokenize_chinese_chars", True),
            special_tokens=extra,
            model_max_length=model_max_length,
            **tokens,
        )

    @classmethod
    def _from_tokenizer_json(cls, path: Path, tokens: dict, extra: list, model_max_length):
        spec = read_json(path)
        model = spec.get("model") or {}
        if model.get("type") != "WordPiece":
            raise NotImplementedError(f"{path}: model type {model.get('type')!r} is not WordPiece")
        norm = spec.get("normalizer") or {}
        if norm.get("type") != "BertNormalizer":
            raise NotImplementedError(f"{path}: normalizer {norm.get('type')!r} is not supported (expected BertNormalizer)")
        pre = spec.get("pre_tokenizer") or {}
        if pre.get("type") != "BertPreTokenizer":
            raise NotImplementedError(f"{path}: pre_tokenizer {pre.get('type')!r} is not supported (expected BertPreTokenizer)")
        vocab_map = model.get("vocab")
        if not isinstance(vocab_map, dict) or not vocab_map:
            raise ValueError(f"{path}: model.vocab is missing or empty")
        vocab = [None] * len(vocab_map)
        for tok, i in vocab_map.items():
            if not isinstance(i, int) or not 0 <= i < len(vocab) or vocab[i] is not None:
                raise ValueError(f"{path}: model.vocab ids must be 0..{len(vocab) - 1} without gaps; got {i!r} for {tok!r}")
            vocab[i] = tok
        specials = list(extra)
        for at in spec.get("added_tokens", []):
            content = at.get("content")
            if vocab_map.get(content) != at.get("id"):
                raise NotImplementedError(f"{path}: added token {content!r} (id {at.get('id')}) is not in the vocabulary")
            if at.get("normalized") or at.get("lstrip") or at.get("rstrip") or at.get("single_word"):
                raise NotImplementedError(
                    f"{path}: added token {content!r} uses normalized/lstrip/rstrip/single_word matching, which is not supported"
                )
            specials.append(content)
        dec = spec.get("decoder") or {}
        return cls(
            vocab=vocab,
            do_lower_case=norm.get("lowercase", True),
            strip_accents=norm.get("strip_accents"),
            tokenize_chinese_chars=norm.get("handle_chinese_chars", True),
            clean_text=norm.get("clean_text", True),
            special_tokens=specials,
            max_input_chars_per_word=model.get("max_input_chars_per_word", 100),
            continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
            model_max_length=model_max_length,
            decoder_cleanup=dec.get("cleanup", True),
            **{**tokens, "unk_token": model.get("unk_token", tokens["unk_token"])},
        )

    # ---- encoding ----

    def encode_ragged(self, texts, max_length: int | None = None, add_special_tokens: bool = True):
        """Ids of every text without padding: `(ids int32 [total], offsets int64 [N + 1])`;
        text i has ids[offsets[i]:offsets[i + 1]]. `max_length`: truncate (None: no limit)."""
        texts = _check_texts(texts)
        if max_length is not None:
            max_length = self._check_max_length(max_length, add_special_tokens)
        return self._wp.encode(texts, 0 if max_length is None else max_length, add_special_tokens)

    def __call__(
        self,
        texts,
        max_length: int | None = None,
        padding: bool | str = True,
        truncation: bool = True,
        add_special_tokens: bool = True,
    ) -> dict:
        """Encode `texts` (a str or a list of str).

        padding: True / "longest" pads to the longest text, "max_length" to `max_length`, False
        returns lists of lists instead of arrays. truncation: cut to `max_length` (or to
        `model_max_length` when `max_length` is None).
        """
        texts = _check_texts(texts)
        if not texts:
            raise ValueError("texts: expected at least one text, got an empty list")
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise ValueError(f"padding: expected True, False, 'longest' or 'max_length', got {padding!r}")
        limit = max_length if max_length is not None else self.model_max_length
        if limit is not None:
            limit = self._check_max_length(limit, add_special_tokens)
        ids, offsets = self._wp.encode(texts, limit if (truncation and limit is not None) else 0, add_special_tokens)
        lengths = np.diff(offsets)
        if padding in (False, "do_not_pad"):
            rows = [ids[offsets[i] : offsets[i + 1]].astype(np.int64).tolist() for i in range(len(texts))]
            return {
                "input_ids": rows,
                "token_type_ids": [[0] * len(r) for r in rows],
                "attention_mask": [[1] * len(r) for r in rows],
            }
        T = int(lengths.max())
        if padding == "max_length":
            if max_length is None and self.model_max_length is None:
                raise ValueError("padding='max_length' needs max_length (this tokenizer has no model_max_length)")
            T = max(T, limit)
        mask = np.arange(T)[None, :] < lengths[:, None]
        input_ids = np.full((len(texts), T), self._wp.pad_id, dtype=np.int64)
        input_ids[mask] = ids
        return {
            "input_ids": input_ids,
            "token_type_ids": np.zeros((len(texts), T), dtype=np.int64),
            "attention_mask": mask.astype(np.int64),
        }

    def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None) -> list[int]:
        """Ids of one text as a list."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        ids, _ = self.encode_ragged([text], max_length, add_special_tokens)
        return ids.astype(np.int64).tolist()

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of one text (no [CLS]/[SEP])."""
        return self.convert_ids_to_tokens(self.encode(text, add_special_tokens=False))

    def _check_max_length(self, max_length, add_special_tokens: bool) -> int:
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
            raise TypeError(f"max_length: expected int, got {type(max_length).__name__}")
        low = 2 if add_special_tokens else 1
        if max_length < low:
            raise ValueError(f"max_length: expected at least {low}, got {max_length}")
        return int(max_length)

    # ---- vocabulary and decoding ----

    @property
    def vocab_size(self) -> int:
        """The number of tokens in the vocabulary."""
        return self._wp.vocab_size

    def __len__(self) -> int:
        return self._wp.vocab_size

    @property
    def pad_token_id(self) -> int:
        """The id of [PAD]."""
        return self._wp.pad_id

    @property
    def cls_token_id(self) -> int:
        """The id of [CLS]."""
        return self._wp.cls_id

    @property
    def sep_token_id(self) -> int:
        """The id of [SEP]."""
        return self._wp.sep_id

    @property
    def unk_token_id(self) -> int:
        """The id of [UNK]."""
        return self._wp.unk_id

    @property
    def all_special_ids(self) -> list[int]:
        """The ids of the special tokens, sorted."""
        return sorted(self._special_ids)

    def _tokens(self) -> list[str]:
        if self._vocab is None:
            self._vocab = self._wp.vocab()
        return self._vocab

    def convert_ids_to_tokens(self, ids) -> list[str] | str:
        """The token of an id, or the list of tokens of a sequence of ids."""
        if isinstance(ids, (int, np.integer)):
            return self._wp.id_to_token(int(ids))
        return [self._wp.id_to_token(int(i)) for i in np.asarray(ids).reshape(-1)]

    def convert_tokens_to_ids(self, tokens) -> list[int] | int:
        """The id of a token, or the list of ids of a sequence of tokens ([UNK]'s id for an
        unknown token)."""
        if isinstance(tokens, str):
            i = self._wp.token_to_id(tokens)
            return self._wp.unk_id if i is None else i
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def decode(self, ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool = False) -> str:
        """Text of `ids` as transformers' fast BERT tokenizer decodes it: after the first token,
        continuation pieces are glued to the previous token and others follow a space; the decoder's per-token
        clean-up (" ." -> ".", ...), and optionally transformers' whole-string clean-up."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids: expected integer token ids, got dtype {ids.dtype}")
        vocab = self._tokens()
        parts = []
        for i in ids.tolist():
            if not 0 <= i < len(vocab):
                raise ValueError(f"ids: token id {i} is outside the vocabulary [0, {len(vocab)})")
            if skip_special_tokens and i in self._special_ids:
                continue
            tok = vocab[i]
            if parts:
                tok = tok[len(self._prefix) :] if tok.startswith(self._prefix) else " " + tok
            if self.decoder_cleanup:
                for a, b in _DECODER_CLEANUP:
                    tok = tok.replace(a, b)
            parts.append(tok)
        out = "".join(parts)
        if clean_up_tokenization_spaces:
            for a, b in _STRING_CLEANUP:
                out = out.replace(a, b)
        return out

    def batch_decode(self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool = False):
        """decode() of each sequence."""
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    def __repr__(self) -> str:
        return f"WordPieceTokenizer({self._source!r}, vocab_size={self.vocab_size})"
