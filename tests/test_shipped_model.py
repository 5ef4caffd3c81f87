"""The inverter + corrector shipped in vec2text_c/pretrained/minilm (trained by vec2text_c.train on
the shared corpora for all-MiniLM-L6-v2): they load, stay within the size budget, and invert
held-out sentences (texts the training never saw, chosen by the same hash split) to something
measurably close. The floors are set below what README.md reports for the same setting, so
that they catch a broken model or loop, not noise."""
from __future__ import annotations

import random

import numpy as np
import pytest

import vec2text_c
from vec2text_c import metrics
from vec2text_c.models import builtin_model_dir
from vec2text_c.train.corpora import heldout_split, read_corpus

N = 24
# measured on these 24 sentences at 5 steps, beam 2: token F1 14.1, cosine 0.196 (keep_best:
# 20.5, 0.303; the inverter alone 18.0, 0.224). The model is weak (CPU-trained, see README), so
# the floors only separate it from a broken model or loop: a model that ignores its input, or a
# loop that scrambles tokens, lands near F1 2 and cosine 0.05 on this corpus.
FLOOR_F1 = 8.0
FLOOR_COS = 0.12


@pytest.fixture(scope="module")
def corrector():
    return vec2text_c.load_pretrained_corrector()


@pytest.fixture(scope="module")
def heldout(shared_data, corrector):
    _, held = heldout_split(read_corpus([shared_data]))
    # the training run's test split is held[1000:] (its first 1,000 held-out texts were the
    # validation split); a seeded sample, since the split runs in corpus order
    pick = random.Random(0).sample(held[1000:], 4 * N)
    return [t for t in pick if len(corrector.tokenizer.encode(t)) <= 32][:N]


def test_files_within_the_size_budget():
    d = builtin_model_dir()
    for part in ("inverter", "corrector"):
        size = sum(f.stat().st_size for f in (d / part).iterdir())
        assert size <= 25 * 2**20, (part, size)
    assert (d / "t5" / "spiece.model").is_file()


def test_default_is_minilm(corrector):
    assert corrector.dim == 384
    assert corrector.embedder_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert corrector.inverter_checkpoint.path == builtin_model_dir() / "inverter"


def test_heldout_sentences_come_back_close(corrector, heldout):
    assert len(heldout) == N
    E = corrector.embed(heldout, 128)
    preds = vec2text_c.invert_embeddings(E, corrector, num_steps=5, sequence_beam_width=2)
    f1 = 100 * metrics.token_f1(preds, heldout)
    cos = float(np.mean(np.sum(corrector.embed(preds, 128) * E, axis=1)))
    assert f1 >= FLOOR_F1, (f1, list(zip(preds, heldout))[:5])
    assert cos >= FLOOR_COS


def test_correction_rounds_find_closer_text_than_the_inverter(corrector, heldout):
    # measured: 0.224 for the inverter alone, 0.303 for the best of 5 rounds at beam 2. Without
    # keep_best the shipped corrector's last round is not better than the inverter (0.196): a
    # known weakness of this CPU-trained corrector, recorded in the README.
    E = corrector.embed(heldout, 128)
    first = vec2text_c.invert_embeddings(E, corrector)
    corrected = vec2text_c.invert_embeddings(E, corrector, num_steps=5, sequence_beam_width=2, keep_best=True)
    cos0 = np.sum(corrector.embed(first, 128) * E, axis=1).mean()
    cos5 = np.sum(corrector.embed(corrected, 128) * E, axis=1).mean()
    assert cos5 > cos0 + 0.03, (cos0, cos5)


def test_bfloat16_mode_loads_and_stays_close(corrector, heldout):
    c16 = vec2text_c.load_pretrained_corrector("minilm", dtype="bfloat16")
    E = corrector.embed(heldout[:8], 128)
    a = vec2text_c.invert_embeddings(E, corrector)
    b = vec2text_c.invert_embeddings(E, c16)
    assert metrics.token_f1(b, a) > 0.8  # measured 0.98
