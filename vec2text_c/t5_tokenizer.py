"""The T5 (SentencePiece unigram) tokenizer as transformers 4.46.3's T5TokenizerFast uses it.

Decoding reproduces `batch_decode(ids, skip_special_tokens=True)` of the fast tokenizer exactly:

- ids map to pieces through the tokenizer.json vocabulary (the Unigram pieces, then the added
  tokens such as `<extra_id_k>`); ids the tokenizer does not know (e.g. 32100..32127 of
  t5-base's 32128-row embedding) are dropped silently, as `tokenizers` does;
- with skip_special_tokens, every special token is dropped: the added tokens flagged special
  in tokenizer.json, plus pad / eos / unk and the additional special tokens named in
  tokenizer_config.json / special_tokens_map.json (transformers registers those as special);
- the Metaspace decoder turns every `▁` into a space, except that in the first remaining token
  every `▁` is removed (prepend_scheme "always"/"first"; "never" keeps them);
- `clean_up_tokenization_spaces` comes from tokenizer_config.json and defaults to False (the
  4.46.3 default); when true, transformers' English clean-up (" ." -> "." ...) is applied.

Encoding (for the GTR embedder, whose tokenizer is the same kind) uses the `sentencepiece`
library on the same `spiece.model`, appends `</s>`, and truncates to max_length keeping the
`</s>` (T5TokenizerFast's TemplateProcessing `$A </s>` with truncation). Literal special-token
strings in a text are matched first, as the fast tokenizer's added vocabulary does.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = ["T5Tokenizer"]

_REPLACEMENT = "\u2581"


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def _token_text(tok) -> str | None:
    if tok is None:
        return None
    if isinstance(tok, dict):
        return tok.get("content")
    return str(tok)


def clean_up_tokenization(text: str) -> str:
    """transformers' PreTrainedTokenizerBase.clean_up_tokenization."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


class T5Tokenizer:
    """T5 tokenizer read from a transformers tokenizer directory (spiece.model and, when
    present, tokenizer.json / tokenizer_config.json / special_tokens_map.json)."""

    def __init__(
        self,
        pieces: Sequence[str | None],
        special_ids: Iterable[int],
        *,
        spiece_model: str | os.PathLike | None = None,
        prepend_scheme: str = "always",
        clean_up_tokenization_spaces: bool = False,
        pad_token_id: int = 0,
        eos_token_id: int = 1,
        unk_token_id: int = 2,
        path: str | None = None,
    ):
        if prepend_scheme not in ("always", "first", "never"):
            raise ValueError(f"prepend_scheme: expected 'always', 'first' or 'never', got {prepend_scheme!r}")
        self._pieces = list(pieces)
        self._special = frozenset(int(i) for i in special_ids)
        self._spm_path = None if spiece_model is None else os.fspath(spiece_model)
        self._spm = None
        self.prepend_scheme = prepend_scheme
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.pad_token_id = int(pad_token_id)
        self.eos_token_id = int(eos_token_id)
        self.unk_token_id = int(unk_token_id)
        self.path = path
        # literal special-token strings matched before SentencePiece when encoding
        specials = sorted(
            ((self._pieces[i], i) for i in self._special if 0 <= i < len(self._pieces) and self._pieces[i]),
            key=lambda t: -len(t[0]),
        )
        self._special_by_text = dict(specials)
        self._special_re = re.compile("|".join(re.escape(t) for t, _ in specials)) if specials else None

    # ---- loading ----

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "T5Tokenizer":
        d = Path(path)
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: tokenizer directory not found")
        cfg = _read_json(d / "tokenizer_config.json") if (d / "tokenizer_config.json").is_file() else {}
        smap = _read_json(d / "special_tokens_map.json") if (d / "special_tokens_map.json").is_file() else {}
        spm_file = d / "spiece.model"
        tj = d / "tokenizer.json"
        special_texts = set()
        for key in ("pad_token", "eos_token", "unk_token"):
            t = _token_text(cfg.get(key)) or _token_text(smap.get(key))
            if t:
                special_texts.add(t)
        for t in list(cfg.get("additional_special_tokens") or []) + list(smap.get("additional_special_tokens") or []):
            if _token_text(t):
                special_texts.add(_token_text(t))
        special_ids: set[int] = set()
        prepend = "always"
        if tj.is_file():
            data = _read_json(tj)
            model = data.get("model") or {}
            if model.get("type") != "Unigram":
                raise NotImplementedError(f"{tj}: model type {model.get('type')!r}; expected a T5 Unigram tokenizer")
            pieces: list[str | None] = [str(p[0]) for p in model.get("vocab") or []]
            for tok in data.get("added_tokens") or []:
                i = int(tok["id"])
                if i >= len(pieces):
                    pieces.extend([None] * (i + 1 - len(pieces)))
                pieces[i] = tok["content"]
                if tok.get("special"):
                    special_ids.add(i)
            prepend = cls._prepend_scheme(data.get("decoder"), tj)
        elif spm_file.is_file():
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=str(spm_file))
            pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
            extra = int(cfg.get("extra_ids", 100))
            pieces += [f"<extra_id_{i}>" for i in range(extra - 1, -1, -1)]
            special_texts.update(f"<extra_id_{i}>" for i in range(extra))
            special_texts.update({"<pad>", "</s>", "<unk>"} & set(pieces))
        else:
            raise FileNotFoundError(f"{d}: no tokenizer.json or spiece.model (expected a T5 tokenizer directory)")
        for key, tok in (cfg.get("added_tokens_decoder") or {}).items():
            i = int(key)
            if i >= len(pieces):
                pieces.extend([None] * (i + 1 - len(pieces)))
            if pieces[i] is None:
                pieces[i] = tok.get("content")
            if tok.get("special"):
                special_ids.add(i)
        index = {p: i for i, p in enumerate(pieces) if p is not None}
        special_ids.update(index[t] for t in special_texts if t in index)

        def tid(key: str, default: int) -> int:
            t = _token_text(cfg.get(key)) or _token_text(smap.get(key))
            return index.get(t, default) if t else default

        return cls(
            pieces,
            special_ids,
            spiece_model=spm_file if spm_file.is_file() else None,
            prepend_scheme=prepend,
            clean_up_tokenization_spaces=bool(cfg.get("clean_up_tokenization_spaces", False)),
            pad_token_id=tid("pad_token", 0),
            eos_token_id=tid("eos_token", 1),
            unk_token_id=tid("unk_token", 2),
            path=str(d),
        )

    @staticmethod
    def _prepend_scheme(decoder, where) -> str:
        if not decoder:
            raise NotImplementedError(f"{where}: no decoder; expected a Metaspace decoder")
        if decoder.get("type") == "Sequence":
            inner = [x for x in decoder.get("decoders") or [] if x.get("type") == "Metaspace"]
            if len(inner) != 1 or len(decoder["decoders"]) != 1:
                raise NotImplementedError(f"{where}: decoder {decoder!r} is not supported; expected a Metaspace decoder")
            decoder = inner[0]
        if decoder.get("type") != "Metaspace" or decoder.get("replacement", _REPLACEMENT) != _REPLACEMENT:
            raise NotImplementedError(f"{where}: decoder {decoder.get('type')!r} is not supported; expected Metaspace('▁')")
        if "prepend_scheme" in decoder:
            return str(decoder["prepend_scheme"])
        return "always" if decoder.get("add_prefix_space", True) else "never"

    def __reduce__(self):
        if self.path is None:
            raise TypeError("this T5Tokenizer was built by hand, not from a directory")
        return (T5Tokenizer.from_pretrained, (self.path,))

    # ---- decoding ----

    def __len__(self) -> int:
        return len(self._pieces)

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._special)

    def convert_ids_to_tokens(self, ids) -> list[str | None]:
        n = len(self._pieces)
        return [self._pieces[i] if 0 <= i < n else None for i in (int(x) for x in ids)]

    def decode(self, ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> str:
        pieces, special, n = self._pieces, self._special, len(self._pieces)
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < n or pieces[i] is None or (skip_special_tokens and i in special):
                continue
            tokens.append(pieces[i])
        if not tokens:
            text = ""
        elif self.prepend_scheme == "never":
            text = "".join(tokens).replace(_REPLACEMENT, " ")
        else:
            text = tokens[0].replace(_REPLACEMENT, "") + "".join(tokens[1:]).replace(_REPLACEMENT, " ")
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        if isinstance(sequences, np.ndarray) or hasattr(sequences, "__array__"):
            sequences = np.asarray(sequences).tolist()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    # ---- encoding ----

    def _processor(self):
        if self._spm is None:
            if self._spm_path is None:
                raise NotImplementedError(f"{self.path}: encoding needs spiece.model, which this directory lacks")
            import sentencepiece as spm

            self._spm = spm.SentencePieceProcessor(model_file=self._spm_path)
        return self._spm

    def encode(self, text: str, max_length: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text (with the closing </s>), at most max_length of them."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        sp = self._processor()
        ids: list[int] = []
        pos = 0
        parts = list(self._special_re.finditer(text)) if self._special_re else []
        for m in parts + [None]:
            end = m.start() if m else len(text)
            seg = text[pos:end]
            if seg.strip():
                ids.extend(sp.encode(seg))
            if m:
                ids.append(self._special_by_text[m.group(0)])
                pos = m.end()
        if add_special_tokens:
            if max_length is not None:
                ids = ids[: max(int(max_length) - 1, 0)]
            ids.append(self.eos_token_id)
        elif max_length is not None:
            ids = ids[: int(max_length)]
        return ids

    def encode_ragged(self, texts, max_length: int | None = None, add_special_tokens: bool = True):
        """(ids int32 [total], offsets int64 [N + 1]): every text's ids back to back."""
        rows = [self.encode(t, max_length, add_special_tokens) for t in texts]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        flat = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(offsets[-1]))
        return flat, offsets

    def __call__(self, texts, max_length: int, padding_to_max_length: bool = True):
        """(input_ids int32 [N, T], attention_mask int32 [N, T]) with truncation at max_length;
        T = max_length when padding_to_max_length, else the longest row."""
        if isinstance(texts, str):
            texts = [texts]
        rows = [self.encode(t, max_length) for t in texts]
        T = int(max_length) if padding_to_max_length else max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), T), self.pad_token_id, dtype=np.int32)
        mask = np.zeros((len(rows), T), dtype=np.int32)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask

    def __repr__(self) -> str:
        return f"T5Tokenizer(vocab={len(self._pieces)}, special={len(self._special)}, path={self.path!r})"
