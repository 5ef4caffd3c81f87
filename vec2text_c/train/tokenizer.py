"""A SentencePiece unigram vocabulary trained on the corpus, written as a T5 tokenizer
directory (`spiece.model`, `tokenizer_config.json`, and the T5 `config.json` of the model that
uses it) that `vec2text_c.T5Tokenizer` and transformers' `T5Tokenizer` both read.

Ids follow T5: 0 `<pad>` (also the decoder start), 1 `</s>`, 2 `<unk>`; no `<extra_id_k>`
sentinels (they serve span corruption, which inversion does not use).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

__all__ = ["train_sentencepiece", "write_tokenizer_files"]


def train_sentencepiece(texts: list[str], vocab_size: int, out_dir: str | Path, *, seed_sentences: int = 400_000) -> Path:
    """Train a unigram model on `texts` and write `out_dir/spiece.model`."""
    import sentencepiece as spm

    if vocab_size < 100:
        raise ValueError(f"vocab_size: expected at least 100, got {vocab_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        input_sentence_size=seed_sentences,
        shuffle_input_sentence=True,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        normalization_rule_name="nmt_nfkc",
        num_threads=2,
        minloglevel=2,
    )
    path = out_dir / "spiece.model"
    path.write_bytes(model.getvalue())
    return path


def write_tokenizer_files(out_dir: str | Path, max_length: int) -> None:
    """tokenizer_config.json / special_tokens_map.json for the spiece.model in out_dir."""
    out_dir = Path(out_dir)
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    cfg = dict(special, tokenizer_class="T5Tokenizer", extra_ids=0, additional_special_tokens=[],
               model_max_length=max_length, clean_up_tokenization_spaces=False, legacy=True)
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
