"""vec2text_c.T5Tokenizer (the `tokenizers` library, assembled as transformers assembles it)
against transformers 4.46.3's T5TokenizerFast of the same folder: ids on every sentence of the
shared corpora, decoding of random ids, the three ways a folder can hold the tokenizer
(tokenizer.json; spiece.model alone, converted; `legacy: false`), and bad files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from _v2t_fixtures import artifacts
import v2t_reference as ref

import vec2text_c
from vec2text_c.train import corpora

SHIPPED_T5 = Path(vec2text_c.__file__).resolve().parent / "pretrained" / "minilm" / "t5"
ODD = ["  two   spaces ", "a</s>b <extra_id_0> c", "", "tab\tand\nnewline", "Ünïcödé 漢字", " lead", "trail ",
       "\u3000ideographic space", "<pad><unk>", "ﬁ ligature ① circled", "e\u0301 combining", "\x00 nul"]


def _all_sentences() -> list[str]:
    d = Path(ref.SHARED_DATA)
    return list(dict.fromkeys(s for src in corpora._DIR_SOURCES for chunk in src(d) for s in corpora.split_sentences(chunk))) + ODD


@pytest.fixture(scope="module")
def sentences():
    return _all_sentences()


def _spiece_only(tmp: Path, src: Path, **config) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("spiece.model", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, tmp / name)
    if config:
        cfg = json.loads((tmp / "tokenizer_config.json").read_text())
        cfg.update(config)
        (tmp / "tokenizer_config.json").write_text(json.dumps(cfg))
    return tmp


def _same_ids(d: Path, texts: list[str], **kwargs):
    import transformers

    want_tok = transformers.T5TokenizerFast.from_pretrained(str(d), **kwargs)
    ours = vec2text_c.T5Tokenizer.from_pretrained(d)
    for max_length in (None, 32):
        want = want_tok(texts, max_length=max_length, truncation=max_length is not None)["input_ids"]
        ids, off = ours.encode_ragged(texts, max_length)
        got = np.split(ids, off[1:-1])
        bad = [i for i in range(len(texts)) if got[i].tolist() != want[i]]
        assert not bad, (max_length, len(bad), [(texts[i], got[i].tolist(), want[i]) for i in bad[:3]])
    assert ours.encode(texts[0], 32) == want_tok(texts[0], max_length=32, truncation=True)["input_ids"]
    return ours, want_tok


def test_the_shipped_tokenizer_on_every_sentence_of_the_shared_corpora(sentences):
    # spiece.model alone (nmt_nfkc character map, 8,000 pieces): converted as transformers converts it
    assert not (SHIPPED_T5 / "tokenizer.json").exists()
    assert len(sentences) > 200_000
    _same_ids(SHIPPED_T5, sentences)


def test_a_tokenizer_json_on_every_sentence_of_the_shared_corpora(sentences):
    # the layout of the hub's t5-base tokenizer.json (WhitespaceSplit + Metaspace, sentinels)
    _same_ids(artifacts("gtr").tokenizer_dir, sentences)


def test_the_same_model_from_spiece_alone_and_legacy_false(tmp_path):
    texts = ref.read_sentences()[:3000] + ODD
    src = artifacts("gtr").tokenizer_dir
    _same_ids(_spiece_only(tmp_path / "a", src), texts)
    # legacy false: the Metaspace prepends only to the first piece ("first")
    d = _spiece_only(tmp_path / "b", src, legacy=False)
    ours, want = _same_ids(d, texts, legacy=False)
    assert ours.backend.pre_tokenizer.prepend_scheme == "first"


@pytest.mark.parametrize("which", ["json", "spiece"])
def test_decoding_matches(which, tmp_path, rng):
    import transformers

    d = artifacts("gtr").tokenizer_dir if which == "json" else _spiece_only(tmp_path, artifacts("gtr").tokenizer_dir)
    want_tok = transformers.T5TokenizerFast.from_pretrained(str(d))
    ours = vec2text_c.T5Tokenizer.from_pretrained(d)
    assert len(ours) == len(want_tok) and ours.all_special_ids == sorted(want_tok.all_special_ids)
    n = len(want_tok)
    rows = [rng.integers(0, n + 8, size=rng.integers(0, 40)).tolist() for _ in range(2000)]
    rows += [[0, 2, 5, 1, 0, 0], [n - 1, 7], [], [1, 1], [0]]
    for skip in (True, False):
        assert ours.batch_decode(rows, skip_special_tokens=skip) == want_tok.batch_decode(rows, skip_special_tokens=skip)
        assert ours.batch_decode(np.array([[3, 4, 5], [6, 1, 0]]), skip_special_tokens=skip) == \
            want_tok.batch_decode([[3, 4, 5], [6, 1, 0]], skip_special_tokens=skip)
    want_clean = transformers.T5TokenizerFast.from_pretrained(str(d), clean_up_tokenization_spaces=True)
    assert ours.batch_decode(rows, skip_special_tokens=True, clean_up_tokenization_spaces=True) == \
        want_clean.batch_decode(rows, skip_special_tokens=True)
    # negative ids are dropped (transformers refuses them), like ids past the vocabulary
    assert ours.decode([-1, 5, 2**40, 6]) == want_tok.decode([5, 6])
    assert ours.convert_ids_to_tokens([5, -1, n + 100]) == [want_tok.convert_ids_to_tokens(5), None, None]


def test_bad_tokenizer_folders_and_inputs(tmp_path):
    src = artifacts("gtr").tokenizer_dir
    with pytest.raises(FileNotFoundError, match="no tokenizer.json or spiece.model"):
        vec2text_c.T5Tokenizer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer directory not found"):
        vec2text_c.T5Tokenizer.from_pretrained(tmp_path / "missing")
    bad = tmp_path / "badjson"
    bad.mkdir()
    (bad / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(ValueError, match=r"badjson/tokenizer.json: not a tokenizers file"):
        vec2text_c.T5Tokenizer.from_pretrained(bad)
    bpe = tmp_path / "bpe"
    bpe.mkdir()
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE()).save(str(bpe / "tokenizer.json"))
    with pytest.raises(NotImplementedError, match="model type 'BPE'; expected a T5 Unigram"):
        vec2text_c.T5Tokenizer.from_pretrained(bpe)
    sp = _spiece_only(tmp_path / "sp", src)
    (sp / "spiece.model").write_bytes((src / "spiece.model").read_bytes()[:100])
    with pytest.raises(ValueError, match=r"sp/spiece.model: truncated"):
        vec2text_c.T5Tokenizer.from_pretrained(sp)
    (sp / "spiece.model").write_bytes(b"\x0f\x00")
    with pytest.raises(ValueError, match=r"spiece.model: not a SentencePiece model"):
        vec2text_c.T5Tokenizer.from_pretrained(sp)
    cfg = _spiece_only(tmp_path / "cfg", src, extra_ids="4")
    with pytest.raises(ValueError, match=r"extra_ids: expected an integer in \[0, 100000\], got '4'"):
        vec2text_c.T5Tokenizer.from_pretrained(cfg)
    (cfg / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="tokenizer_config.json: expected a JSON object, got a list"):
        vec2text_c.T5Tokenizer.from_pretrained(cfg)
    tok = vec2text_c.T5Tokenizer.from_pretrained(src)
    with pytest.raises(TypeError, match="text: expected str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        tok.encode_ragged(["a", 3])
    with pytest.raises(TypeError, match="token ids: expected a sequence of integers"):
        tok.batch_decode([[1.5, 2.0]])
    with pytest.raises(ValueError, match="max_length: expected a non-negative integer"):
        tok.encode("abc", -3)


def test_pickles_and_threads(rng):
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    tok = vec2text_c.T5Tokenizer.from_pretrained(artifacts("gtr").tokenizer_dir)
    again = pickle.loads(pickle.dumps(tok))
    texts = ref.read_sentences()[:500]
    want = tok.encode_ragged(texts, 32)
    with ThreadPoolExecutor(4) as ex:
        for got in ex.map(lambda _: again.encode_ragged(texts, 32), range(8)):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
