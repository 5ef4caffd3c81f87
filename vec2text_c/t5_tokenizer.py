"""The T5 (SentencePiece unigram) tokenizer, run by the `tokenizers` library exactly as
transformers 4.46.3's T5TokenizerFast runs it.

- With a `tokenizer.json` in the folder, that file is the tokenizer.
- With only `spiece.model`, the tokenizer is assembled as transformers' slow-to-fast conversion
  assembles it: the Unigram pieces with their scores (then `extra_ids` sentinels
  `<extra_id_{n-1}>` … `<extra_id_0>`), the model's unknown id, no byte fallback; the
  normaliser's precompiled character map, then right-strip and runs of spaces to one `▁`; a
  Metaspace pre-tokeniser and decoder (`▁`, prepend "always", or "first" when the folder's
  tokenizer_config.json says `legacy: false`); `$A </s>` appended; the model's control pieces
  as special added tokens and its user-defined pieces as plain ones.
- Then, as T5TokenizerFast's constructor does, pad / eos / unk, the sentinels, the additional
  special tokens and the `added_tokens_decoder` entries of tokenizer_config.json /
  special_tokens_map.json become special added tokens (matched in the raw text before
  normalisation, dropped by `skip_special_tokens`).

Decoding is the backend's decode; ids outside the vocabulary (e.g. 32100..32127 of t5-base's
32128-row embedding) are dropped silently, as `tokenizers` drops them (negative ids too, which
transformers would refuse). `clean_up_tokenization_spaces` comes from tokenizer_config.json and
defaults to False (the 4.46.3 default); when true, transformers' English clean-up (" ." -> "."
...) follows. Encoding truncates to max_length keeping the closing `</s>`.
"""
from __future__ import annotations

import os
from pathlib import Path


import numpy as np

from ._jsonfile import read_json_if_present

__all__ = ["T5Tokenizer", "build_t5_backend"]

_REPLACEMENT = "\u2581"
_MAX_ID = 2**31 - 1


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


def build_t5_backend(spiece_model: str | os.PathLike, extra_ids: int = 100, legacy: bool = True):
    """A `tokenizers.Tokenizer` from a SentencePiece unigram model, as transformers 4.46.3's
    T5Converter builds it (before T5TokenizerFast registers its special tokens)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    from ._spm_model import CONTROL, UNIGRAM, USER_DEFINED, read_spm_model

    path = Path(spiece_model)
    m = read_spm_model(path.read_bytes(), str(path))
    if m.model_type != UNIGRAM:
        raise NotImplementedError(f"{path}: SentencePiece model type {m.model_type}; a T5 tokenizer is a unigram model (type 1)")
    if not 0 <= m.unk_id < len(m.pieces):
        raise ValueError(f"{path}: unknown-piece id {m.unk_id} outside its {len(m.pieces)} pieces")
    vocab = [(p, float(s)) for p, s, _ in m.pieces]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(int(extra_ids) - 1, -1, -1)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.unk_id, byte_fallback=False))
    tok.add_tokens([AddedToken(p, normalized=False, special=(t == CONTROL))
                    for p, _, t in m.pieces if t in (CONTROL, USER_DEFINED)])
    norm = [normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(" {2,}"), _REPLACEMENT)]
    if m.precompiled_charsmap:
        norm.insert(0, normalizers.Precompiled(m.precompiled_charsmap))
    tok.normalizer = normalizers.Sequence(norm)
    scheme = "always" if legacy else "first"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_REPLACEMENT, prepend_scheme=scheme)
    tok.decoder = decoders.Metaspace(replacement=_REPLACEMENT, prepend_scheme=scheme)
    eos = tok.token_to_id("</s>")
    if eos is None:
        raise ValueError(f"{path}: no '</s>' piece; expected a T5 SentencePiece model")
    tok.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", eos)])
    return tok


class T5Tokenizer:
    """T5 tokenizer read from a transformers tokenizer folder (tokenizer.json, or spiece.model;
    with tokenizer_config.json / special_tokens_map.json when present)."""

    def __init__(self, backend, *, clean_up_tokenization_spaces: bool = False, path: str | None = None):
        from tokenizers import Tokenizer

        if not isinstance(backend, Tokenizer):
            raise TypeError(f"backend: expected a tokenizers.Tokenizer, got {type(backend).__name__}")
        self._tok = backend
        self._tok.no_truncation()
        self._tok.no_padding()
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.path = path

        def tid(text: str, default: int) -> int:
            i = backend.token_to_id(text)
            return default if i is None else int(i)

        self.pad_token_id = tid(self._pad, 0)
        self.eos_token_id = tid(self._eos, 1)
        self.unk_token_id = tid(self._unk, 2)
        self._n = int(backend.get_vocab_size(with_added_tokens=True))

    _pad, _eos, _unk = "<pad>", "</s>", "<unk>"

    # ---- loading ----

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "T5Tokenizer":
        """Load from a folder: its tokenizer.json, or one assembled from spiece.model as
        transformers' T5TokenizerFast assembles it, with the special tokens of the folder's configs."""
        from tokenizers import AddedToken, Tokenizer

        d = Path(path)
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: tokenizer directory not found")
        cfg = read_json_if_present(d / "tokenizer_config.json")
        smap = read_json_if_present(d / "special_tokens_map.json")
        tj, spm_file = d / "tokenizer.json", d / "spiece.model"
        extra = cfg.get("extra_ids", 100)
        if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= 100_000:
            raise ValueError(f"{d / 'tokenizer_config.json'}: extra_ids: expected an integer in [0, 100000], got {extra!r}")
        if tj.is_file():
            try:
                backend = Tokenizer.from_file(str(tj))
            except Exception as e:  # the Rust error names what is wrong, not the file
                raise ValueError(f"{tj}: not a tokenizers file ({e})") from None
            model_type = type(backend.model).__name__
            if model_type != "Unigram":
                raise NotImplementedError(f"{tj}: model type {model_type!r}; expected a T5 Unigram tokenizer")
        elif spm_file.is_file():
            backend = build_t5_backend(spm_file, extra, legacy=cfg.get("legacy", True) is not False)
        else:
            raise FileNotFoundError(f"{d}: no tokenizer.json or spiece.model (expected a T5 tokenizer directory)")

        # the special tokens T5TokenizerFast registers: added_tokens_decoder, then pad / eos /
        # unk and the additional special tokens (or the extra_ids sentinels)
        specials: list = []
        for key, t in sorted((cfg.get("added_tokens_decoder") or {}).items(), key=lambda kv: int(kv[0])):
            if isinstance(t, dict) and t.get("content"):
                specials.append(AddedToken(t["content"], single_word=bool(t.get("single_word", False)),
                                           lstrip=bool(t.get("lstrip", False)), rstrip=bool(t.get("rstrip", False)),
                                           normalized=bool(t.get("normalized", False)),
                                           special=bool(t.get("special", False))))
        names = {}
        for key, default in (("eos_token", cls._eos), ("unk_token", cls._unk), ("pad_token", cls._pad)):
            names[key] = _token_text(cfg.get(key)) or _token_text(smap.get(key)) or default
        given = cfg.get("additional_special_tokens")
        if given is None:
            given = smap.get("additional_special_tokens")
        extra_tokens = [t for t in (_token_text(x) for x in (given or [])) if t]
        if not any("<extra_id_" in t for t in extra_tokens):
            extra_tokens += [f"<extra_id_{i}>" for i in range(extra)]
        seen = {str(t.content) for t in specials}
        for t in [names["eos_token"], names["unk_token"], names["pad_token"], *extra_tokens]:
            if t and t not in seen:
                specials.append(AddedToken(t, special=True, normalized=False))
                seen.add(t)
        if specials:
            backend.add_tokens(specials)
        out = cls(backend, clean_up_tokenization_spaces=bool(cfg.get("clean_up_tokenization_spaces", False)), path=str(d))
        out.pad_token_id, out.eos_token_id, out.unk_token_id = (
            backend.token_to_id(names[k]) if backend.token_to_id(names[k]) is not None else dflt
            for k, dflt in (("pad_token", 0), ("eos_token", 1), ("unk_token", 2)))
        return out

    def __reduce__(self):
        if self.path is None:
            raise TypeError("this T5Tokenizer was built from a tokenizers object, not from a directory")
        return (T5Tokenizer.from_pretrained, (self.path,))

    @property
    def backend(self):
        """The `tokenizers.Tokenizer` that does the work."""
        return self._tok

    # ---- decoding ----

    def __len__(self) -> int:
        return self._n

    @property
    def all_special_ids(self) -> list[int]:
        """The ids of the special tokens (pad, eos, unk and the added ones), sorted."""
        return sorted(int(i) for i, t in self._tok.get_added_tokens_decoder().items() if t.special)

    def convert_ids_to_tokens(self, ids) -> list[str | None]:
        """The piece of each id (None for an id outside the vocabulary)."""
        return [self._tok.id_to_token(i) if 0 <= i <= _MAX_ID else None for i in (int(x) for x in ids)]

    @staticmethod
    def _rows(sequences) -> list[list[int]]:
        out = []
        for s in sequences:
            a = np.asarray(s)
            if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
                raise TypeError(f"token ids: expected a sequence of integers, got {np.asarray(s).dtype} of shape {a.shape}")
            a = a.astype(np.int64, copy=False)
            out.append(a[(a >= 0) & (a <= _MAX_ID)].tolist())
        return out

    def _finish(self, texts: list[str], clean_up_tokenization_spaces: bool | None) -> list[str]:
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return [clean_up_tokenization(t) for t in texts] if clean else texts

    def decode(self, ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None) -> str:
        """The text of one sequence of ids, as T5TokenizerFast.decode gives it."""
        return self.batch_decode([ids], skip_special_tokens, clean_up_tokenization_spaces)[0]

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        """The text of each sequence of ids (rows of a 2-D array or lists), as
        T5TokenizerFast.batch_decode gives them."""
        rows = self._rows(sequences)
        return self._finish(self._tok.decode_batch(rows, skip_special_tokens=bool(skip_special_tokens)),
                            clean_up_tokenization_spaces)

    # ---- encoding ----

    @staticmethod
    def _check_texts(texts) -> list[str]:
        if isinstance(texts, str):
            return [texts]
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}]: expected str, got {type(t).__name__}")
        return texts

    def _encode_rows(self, texts: list[str], max_length: int | None, add_special_tokens: bool) -> list[list[int]]:
        if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 0):
            raise ValueError(f"max_length: expected a non-negative integer or None, got {max_length!r}")
        rows = [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=bool(add_special_tokens))]
        if max_length is None:
            return rows
        n = int(max_length)
        if add_special_tokens:
            # truncation keeps the appended </s>, as the backend's truncation does
            return [r if len(r) <= n else (r[: max(n - 1, 0)] + [self.eos_token_id] if n > 0 else []) for r in rows]
        return [r[:n] for r in rows]

    def encode(self, text: str, max_length: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text (with the closing </s>), at most max_length of them."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        return self._encode_rows([text], max_length, add_special_tokens)[0]

    def encode_ragged(self, texts, max_length: int | None = None, add_special_tokens: bool = True):
        """(ids int32 [total], offsets int64 [N + 1]): every text's ids back to back."""
        rows = self._encode_rows(self._check_texts(texts), max_length, add_special_tokens)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        flat = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(offsets[-1]))
        return flat, offsets

    def __call__(self, texts, max_length: int, padding_to_max_length: bool = True):
        """(input_ids int32 [N, T], attention_mask int32 [N, T]) with truncation at max_length;
        T = max_length when padding_to_max_length, else the longest row."""
        rows = self._encode_rows(self._check_texts(texts), max_length, True)
        T = int(max_length) if padding_to_max_length else max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), T), self.pad_token_id, dtype=np.int32)
        mask = np.zeros((len(rows), T), dtype=np.int32)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask

    def __repr__(self) -> str:
        return f"T5Tokenizer(vocab={self._n}, special={len(self.all_special_ids)}, path={self.path!r})"
