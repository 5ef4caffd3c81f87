"""Unsupervised aligners: k-means, neighbour means and the assignment search against NumPy,
and MiniVec2Vec recovering an orthogonal map from unpaired samples."""
import numpy as np
import pytest

from vec2text_c import _core, align
from vec2text_c.align.minivec2vec import qap_maximize, swap_gains


def test_kmeans_lloyd_steps_match_numpy(rng):
    X = rng.standard_normal((700, 12)).astype(np.float32)
    init = X[rng.choice(700, 9, replace=False)].copy()
    C, assign, inertia, iters = _core.align_kmeans(X, 9, max_iter=4, tol=0.0, init=init)
    c = init.astype(np.float64)
    for _ in range(4):
        a = ((X[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        c = np.stack([X[a == j].mean(0) for j in range(9)])
    np.testing.assert_allclose(C, c, atol=1e-5)
    d = ((X[:, None, :] - c[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(assign, d.argmin(1))
    assert inertia == pytest.approx(d.min(1).sum(), rel=1e-5)
    assert iters == 4


def test_kmeans_seeding_finds_separated_clusters(rng):
    centres = rng.standard_normal((8, 10)) * 5
    X = (np.repeat(centres, 100, 0) + 0.1 * rng.standard_normal((800, 10))).astype(np.float32)
    C, assign, _, _ = _core.align_kmeans(X, 8, seed=3)
    assert sorted(np.bincount(assign, minlength=8)) == [100] * 8
    assert np.abs(np.sort(C, 0) - np.sort(centres, 0)).max() < 0.1
    with pytest.raises(ValueError, match="k <= rows"):
        _core.align_kmeans(X[:5], 6)


def test_topk_mean_and_normalise_match_numpy(rng):
    q = rng.standard_normal((300, 16)).astype(np.float32)
    keys = rng.standard_normal((500, 16)).astype(np.float32)
    values = rng.standard_normal((500, 5)).astype(np.float32)
    out, idx = _core.align_topk_mean(q, keys, values, 7, return_indices=True)
    top = np.argsort(-(q.astype(np.float64) @ keys.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(idx, top)
    np.testing.assert_allclose(out, values[top].mean(1), atol=1e-6)
    m = rng.standard_normal(16).astype(np.float32)
    z = q.astype(np.float64) - m
    np.testing.assert_allclose(_core.align_centre_normalise(q, m), z / np.linalg.norm(z, axis=1, keepdims=True),
                               atol=1e-6)
    with pytest.raises(ValueError, match="k <= nk"):
        _core.align_topk_mean(q, keys, values, 501)


def test_swap_gains_and_assignment_search(rng):
    A = rng.standard_normal((9, 9))
    A = A + A.T
    B = rng.standard_normal((9, 9))
    B = B + B.T
    p = rng.permutation(9)
    f = (A * B[np.ix_(p, p)]).sum()
    G = swap_gains(A, B[np.ix_(p, p)])
    for r in range(9):
        for s in range(r + 1, 9):
            q = p.copy()
            q[r], q[s] = q[s], q[r]
            assert G[r, s] == pytest.approx((A * B[np.ix_(q, q)]).sum() - f, abs=1e-10)
    planted = rng.permutation(9)
    B2 = np.empty_like(A)
    B2[np.ix_(planted, planted)] = A  # B2[planted[i], planted[j]] = A[i, j]
    found = qap_maximize(A, B2, restarts=20, rng=rng)
    np.testing.assert_array_equal(found, planted)


def _hierarchical(rng, d=32, groups=16, sub=6):
    """Clustered data whose structure spans every dimension (an orthogonal map is identifiable)."""
    top = rng.standard_normal((groups, d))
    centres = (top[:, None, :] + 0.35 * rng.standard_normal((groups, sub, d))).reshape(-1, d)
    weights = rng.dirichlet(np.ones(len(centres)) * 5)

    def sample(n):
        c = rng.choice(len(centres), n, p=weights)
        return (centres[c] + 0.12 * rng.standard_normal((n, d))).astype(np.float32)

    return sample


def test_minivec2vec_recovers_orthogonal_map_without_pairs(tmp_path):
    rng = np.random.default_rng(11)
    sample = _hierarchical(rng)
    Q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    to_y = lambda Z: (Z @ Q + 0.01 * rng.standard_normal(Z.shape)).astype(np.float32)  # noqa: E731
    X_train, Y_train = sample(3000), to_y(sample(3000))  # different texts on each side
    X_eval = sample(1000)
    Y_eval = to_y(X_eval)
    model = align.MiniVec2Vec(n_clusters=16, anchor_runs=6, qap_restarts=10, refine_iters=15, seed=0,
                              progress=False).fit(X_train, Y_train)
    scores = align.evaluate(model.transform(X_eval), Y_eval)
    assert scores.top1 >= 0.95, scores
    assert [h["stage"] for h in model.history][:3] == ["anchor_runs", "anchors", "refine"]
    assert model.history[-1]["stage"] == "result" and model.history[-1]["pair_cosine"] > 0.9
    model.save(tmp_path / "m")
    back = align.load(tmp_path / "m")
    assert isinstance(back, align.MiniVec2Vec)
    np.testing.assert_array_equal(back.transform(X_eval), model.transform(X_eval))
    # no pairs, no signal: the identity map across the two spaces scores nothing
    assert align.evaluate(X_eval, Y_eval).top1 < 0.05


def test_minivec2vec_bad_input(rng):
    X = rng.standard_normal((30, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="too few rows for 20 clusters"):
        align.MiniVec2Vec(progress=False).fit(X, X)
    bad = rng.standard_normal((100, 4)).astype(np.float32)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Y: expected finite values, found NaN at row 3"):
        align.MiniVec2Vec(progress=False).fit(rng.standard_normal((100, 4)), bad)
    with pytest.raises(RuntimeError, match="before transform"):
        align.MiniVec2Vec().transform(X)
    with pytest.raises(ValueError, match="n_clusters"):
        align.MiniVec2Vec(n_clusters=1)
