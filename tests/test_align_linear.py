"""Linear aligners (Ridge, Procrustes), their C kernels, evaluate(), save/load and bad input."""
import json

import numpy as np
import pytest

from vec2text_c import _core, align
from vec2text_c.align.base import _finite_col_mean


def _orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _synthetic(rng, n, d, noise):
    X = rng.standard_normal((n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = _orthogonal(rng, d)
    Y = (X @ Q + noise * rng.standard_normal((n, d)) / np.sqrt(d)).astype(np.float32)
    return X, Y, Q


def _numpy_scores(P, T, chunk):
    ranks, top1 = [], []
    for s in range(0, len(P), chunk):
        p = P[s:s + chunk].astype(np.float64)
        t = T[s:s + chunk].astype(np.float64)
        S = (p / np.linalg.norm(p, axis=1, keepdims=True)) @ (t / np.linalg.norm(t, axis=1, keepdims=True)).T
        own = np.diag(S)
        ranks.append(1 + (S > own[:, None]).sum(1))
        top1.append(S.argmax(1) == np.arange(len(p)))
    cos = lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)  # noqa: E731
    P64, T64 = P.astype(np.float64), T.astype(np.float64)
    return (cos(P64, T64).mean(), cos(P64 - P64.mean(0), T64 - T64.mean(0)).mean(),
            np.concatenate(top1).mean(), np.concatenate(ranks).mean())


# ---------------------------------------------------------------- kernels


def test_moment_kernels_match_numpy(rng):
    # more rows than one streamed chunk (4096) and more columns than one Gram block (128 and 256)
    X = (rng.standard_normal((8500, 300)) + 2).astype(np.float32)
    Y = rng.standard_normal((8500, 70)).astype(np.float32)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    mx, my = _core.align_col_mean(X), _core.align_col_mean(Y)
    np.testing.assert_allclose(mx, X64.mean(0), atol=1e-6)
    wide = rng.standard_normal((30, 2100)).astype(np.float32)  # two column passes of the means (2048 + 52)
    np.testing.assert_allclose(_core.align_col_mean(wide), wide.astype(np.float64).mean(0), rtol=1e-6, atol=1e-7)
    Xc, Yc = X64 - mx, Y64 - my
    XtX, XtY = Xc.T @ Xc, Xc.T @ Yc
    G = _core.align_cross_product(X, X, mx, mx)
    np.testing.assert_array_equal(G, G.T)
    np.testing.assert_allclose(G, XtX, rtol=1e-5, atol=1e-5 * np.abs(XtX).max())
    C = _core.align_cross_product(X, Y, mx, my)
    np.testing.assert_allclose(C, XtY, atol=1e-5 * np.abs(XtY).max())
    C = _core.align_cross_product(X, Y)
    np.testing.assert_allclose(C, X64.T @ Y64, atol=1e-5 * np.abs(X64.T @ Y64).max())
    G2, C2 = _core.align_gram_and_cross(X, Y, mx, my)
    np.testing.assert_array_equal(G2, G2.T)
    np.testing.assert_allclose(G2, XtX, rtol=1e-5, atol=1e-5 * np.abs(XtX).max())
    np.testing.assert_allclose(C2, XtY, atol=1e-5 * np.abs(XtY).max())
    G2, C2 = _core.align_gram_and_cross(X[:, :50], Y)  # narrow: no split of the Gram, no centring
    np.testing.assert_allclose(G2, X64[:, :50].T @ X64[:, :50], rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(C2, X64[:, :50].T @ Y64, atol=1e-5 * np.abs(X64.T @ Y64).max())
    K = _core.align_row_gram(X[:40], mx)
    np.testing.assert_allclose(K, Xc[:40] @ Xc[:40].T, rtol=1e-5, atol=1e-4)
    W = rng.standard_normal((300, 70)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    np.testing.assert_allclose(_core.align_affine(X, W, b), X64 @ W + b, rtol=1e-5, atol=1e-3)
    A = Xc.T @ Xc + np.eye(300)
    for k in (5, 150):  # one partial column block; four full blocks and a partial one, over the team
        B = rng.standard_normal((300, k))
        np.testing.assert_allclose(_core.align_cholesky_solve(np.linalg.cholesky(A), B), np.linalg.solve(A, B),
                                   rtol=1e-9, atol=1e-12)


def test_retrieval_ranks_match_numpy(rng):
    T = rng.standard_normal((700, 32)).astype(np.float32)
    P = (T + 2.0 * rng.standard_normal(T.shape)).astype(np.float32)
    rank, top1 = _core.align_retrieval_ranks(P, T, 300)  # chunks of 300, 300, 100
    _, _, t1, mr = _numpy_scores(P, T, 300)
    assert 0.05 < top1.mean() < 0.95  # a non-trivial case
    assert top1.mean() == t1
    assert rank.mean() == mr


def test_evaluate_equals_numpy(rng):
    T = (rng.standard_normal((1000, 48)) + 0.5).astype(np.float32)
    P = (T + 1.0 * rng.standard_normal(T.shape)).astype(np.float32)
    got = align.evaluate(P, T, chunk_size=384)
    cos, ccos, t1, mr = _numpy_scores(P, T, 384)
    assert got.n == 1000
    assert got.cosine == pytest.approx(cos, abs=1e-6)
    assert got.centred_cosine == pytest.approx(ccos, abs=1e-6)
    assert got.top1 == t1
    assert got.mean_rank == mr
    assert 1 < got.mean_rank < 384 / 2


def test_evaluate_identity_and_random():
    rng = np.random.default_rng(5)
    T = rng.standard_normal((500, 16)).astype(np.float32)
    same = align.evaluate(T, T)
    assert same.top1 == 1.0 and same.mean_rank == 1.0 and same.cosine == pytest.approx(1.0, abs=1e-6)
    rnd = align.evaluate(rng.standard_normal((500, 16)), T)
    assert rnd.top1 < 0.05 and 180 < rnd.mean_rank < 320


# ---------------------------------------------------------------- Ridge and Procrustes


@pytest.mark.parametrize("cls", [align.Ridge, align.Procrustes])
def test_synthetic_orthogonal_map_is_recovered(rng, cls):
    X, Y, Q = _synthetic(rng, 3000, 96, noise=0.3)
    model = cls().fit(X[:2000], Y[:2000])
    scores = align.evaluate(model.transform(X[2000:]), Y[2000:])
    assert scores.top1 >= 0.99, scores
    assert scores.cosine > 0.9


def test_permutation_of_dimensions_is_undone_exactly(rng):
    X = rng.standard_normal((400, 40)).astype(np.float32)
    perm = rng.permutation(40)
    Y = X[:, perm]
    P = np.eye(40, dtype=np.float32)[:, perm]  # X @ P == X[:, perm]
    proc = align.Procrustes().fit(X, Y)
    np.testing.assert_allclose(proc.W, P, atol=1e-5)
    np.testing.assert_allclose(proc.transform(X), Y, atol=1e-5)
    ridge = align.Ridge(alpha=0.0).fit(X, Y)
    np.testing.assert_allclose(ridge.W, P, atol=1e-5)
    np.testing.assert_allclose(ridge.transform(X), Y, atol=1e-5)


@pytest.mark.parametrize("n", [600, 50])  # primal (n >= d_in) and dual (n < d_in) forms
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_equals_closed_form(rng, n, fit_intercept):
    X = (rng.standard_normal((n, 80)) * 0.2 + 0.1).astype(np.float32)
    Y = (X @ rng.standard_normal((80, 24)) + 0.05 * rng.standard_normal((n, 24)) + 1).astype(np.float32)
    model = align.Ridge(alpha=0.3, fit_intercept=fit_intercept).fit(X, Y)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    mx = X64.mean(0) if fit_intercept else 0
    my = Y64.mean(0) if fit_intercept else 0
    Xc, Yc = X64 - mx, Y64 - my
    W = np.linalg.solve(Xc.T @ Xc + 0.3 * np.eye(80), Xc.T @ Yc)
    np.testing.assert_allclose(model.W, W, rtol=1e-5, atol=1e-5 * np.abs(W).max())
    pred = X64 @ W + (my - mx @ W if fit_intercept else 0)
    np.testing.assert_allclose(model.transform(X), pred, rtol=1e-5, atol=1e-5 * np.abs(pred).max())
    assert (model.b is not None) == fit_intercept


@pytest.mark.parametrize("d1,d2", [(30, 20), (20, 30)])
def test_procrustes_semi_orthogonal_equals_svd(rng, d1, d2):
    X = rng.standard_normal((200, d1)).astype(np.float32)
    Y = rng.standard_normal((200, d2)).astype(np.float32)
    W = align.Procrustes().fit(X, Y).W.astype(np.float64)
    U, _, Vt = np.linalg.svd(X.astype(np.float64).T @ Y, full_matrices=False)
    np.testing.assert_allclose(W, U @ Vt, atol=1e-5)
    k = min(d1, d2)
    np.testing.assert_allclose(W.T @ W if d1 >= d2 else W @ W.T, np.eye(k), atol=1e-5)


def test_procrustes_scale_and_center(rng):
    X = rng.standard_normal((300, 12)).astype(np.float32)
    Q = _orthogonal(rng, 12)
    Y = (2.5 * X @ Q + 4.0).astype(np.float32)
    m = align.Procrustes(scale=True, center=True).fit(X, Y)
    np.testing.assert_allclose(m.W, 2.5 * Q, atol=1e-4)
    np.testing.assert_allclose(m.transform(X), Y, atol=1e-4)


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("model", [align.Ridge(alpha=0.2), align.Procrustes(center=True),
                                   align.Ridge(fit_intercept=False)])
def test_save_load_round_trip(rng, tmp_path, model):
    X = rng.standard_normal((100, 10)).astype(np.float32)
    Y = rng.standard_normal((100, 6)).astype(np.float32)
    model.fit(X, Y)
    model.save(tmp_path / "al")
    cfg = json.loads((tmp_path / "al" / "aligner.json").read_text())
    assert cfg["format_version"] == 1 and cfg["class"] == type(model).__name__
    back = type(model).load(tmp_path / "al")
    assert back._params() == model._params()
    np.testing.assert_array_equal(back.transform(X), model.transform(X))
    np.testing.assert_array_equal(align.load(tmp_path / "al").transform(X), model.transform(X))


def test_load_rejects_other_class_and_future_version(rng, tmp_path):
    X = rng.standard_normal((50, 4)).astype(np.float32)
    align.Ridge().fit(X, X).save(tmp_path / "r")
    with pytest.raises(ValueError, match="holds a Ridge aligner"):
        align.Procrustes.load(tmp_path / "r")
    cfg_path = tmp_path / "r" / "aligner.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["format_version"] = 99
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format_version 99"):
        align.load(tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="not an aligner folder"):
        align.load(tmp_path / "missing")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", [align.Ridge, align.Procrustes])
def test_bad_input_raises_clear_errors(rng, cls):
    X = rng.standard_normal((60, 8)).astype(np.float32)
    Y = rng.standard_normal((60, 5)).astype(np.float32)
    with pytest.raises(RuntimeError, match="before transform"):
        cls().transform(X)
    with pytest.raises(ValueError, match="X has 60 rows, Y has 59"):
        cls().fit(X, Y[:59])
    bad = X.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="X: expected finite values, found NaN at row 7, column 3"):
        cls().fit(bad, Y)
    bad = Y.copy()
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match="Y: expected finite values, found Inf"):
        cls().fit(X, bad)
    bad[3, 0] = -np.inf  # +inf and -inf in one column: the checking sum is NaN, still caught
    with pytest.raises(ValueError, match="Y: expected finite values, found Inf at row 2, column 0"):
        cls(**{"fit_intercept" if cls is align.Ridge else "center": False}).fit(X, bad)
    huge = X.copy()
    huge[:2, 1] = 3e38  # finite; a float32 column sum would overflow, the double sum the check uses does not
    np.testing.assert_allclose(_finite_col_mean(huge, "X"), huge.astype(np.float64).mean(0), rtol=1e-6)
    with pytest.raises(TypeError, match="X: expected a floating-point array"):
        cls().fit(X.astype(np.int64), Y)
    with pytest.raises(ValueError, match=r"X: expected a 2-D array"):
        cls().fit(X[0], Y)
    with pytest.raises(ValueError, match="too few rows"):
        cls().fit(X[:1], Y[:1])
    m = cls().fit(X, Y)
    with pytest.raises(ValueError, match="expected 8 columns"):
        m.transform(X[:, :7])


def test_too_few_rows_for_the_dimension(rng):
    X = rng.standard_normal((20, 30)).astype(np.float32)
    Y = rng.standard_normal((20, 25)).astype(np.float32)
    with pytest.raises(ValueError, match="too few rows for least squares"):
        align.Ridge(alpha=0).fit(X, Y)
    with pytest.raises(ValueError, match="too few rows for Procrustes"):
        align.Procrustes().fit(X, Y)
    assert align.Ridge(alpha=0.1).fit(X, Y).W.shape == (30, 25)  # the dual form handles n < d
    with pytest.raises(ValueError, match="alpha"):
        align.Ridge(alpha=-1)


def test_evaluate_bad_input(rng):
    P = rng.standard_normal((10, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="expected the shape of predicted"):
        align.evaluate(P, P[:, :3])
    with pytest.raises(ValueError, match="chunk_size"):
        align.evaluate(P, P, chunk_size=0)
    with pytest.raises(ValueError, match="at least 2 rows"):
        align.evaluate(P[:1], P[:1])
