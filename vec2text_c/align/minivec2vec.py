"""mini-vec2vec (Dar 2025): a linear map between two embedding spaces learned without pairs.

1. Centre each space and scale its rows to unit length.
2. Anchors: k-means in both spaces (on subsamples), repeated; each time the two centroid sets
   are matched by a quadratic assignment on their centred Gram kernels (which centroid of Y
   plays the role of which centroid of X), and the matched centroids become anchor pairs
   (from the runs whose matched kernels agree best).
3. Relative representations: every row becomes its cosines to its space's anchors. Rows of X
   and Y are compared in that shared coordinate system; each X row is paired with the mean of
   its `top_k` most similar Y rows (pseudo-pairs), and Procrustes gives a first map W.
4. Refinement: repeatedly, a sample of X is mapped by W, paired with the mean of its nearest
   Y rows, and the Procrustes solution of those pairs is averaged into W; finally k-means
   centroids of X and of Y (seeded with the mapped X centroids) give one more averaged step.

The k-means, the cosine matrices and the neighbour means run in the C core; the small
quadratic assignments (n_clusters x n_clusters) and the d x d SVDs use NumPy.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._progress import show_progress
from .. import _core
from .base import Aligner, _check_number, _matrix


def swap_gains(A: np.ndarray, Bp: np.ndarray) -> np.ndarray:
    """G[r, s]: change of sum_ij A_ij Bp_ij when positions r and s of the permutation that
    produced Bp are swapped (A and Bp symmetric). Computed for all pairs at once:
    G = 2 (T - e_r - e_s) + (A_rr - A_ss)(Bp_ss - Bp_rr), with T_rs = M_rs + M_sr - M_rr - M_ss,
    M = A Bp, and e_r, e_s the j = r and j = s terms that T counts but a swap leaves alone."""
    M = A @ Bp
    dM, dA, dB = np.diag(M), np.diag(A), np.diag(Bp)
    T = M + M.T - dM[:, None] - dM[None, :]
    e_r = (dA[:, None] - A) * (Bp - dB[:, None])
    e_s = (A - dA[None, :]) * (dB[None, :] - Bp)
    return 2 * (T - e_r - e_s) + (dA[:, None] - dA[None, :]) * (dB[None, :] - dB[:, None])


def qap_maximize(A: np.ndarray, B: np.ndarray, restarts: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation p maximising sum_ij A[i, j] B[p[i], p[j]] (A, B symmetric k x k).

    Local search over pairwise swaps (2-opt) from `restarts` random permutations, taking the
    best improving swap each time; the best local optimum wins.
    """
    k = A.shape[0]
    A = A.astype(np.float64)
    B = B.astype(np.float64)
    best_p, best_f = None, -np.inf
    for _ in range(restarts):
        p = rng.permutation(k)
        while True:
            Bp = B[np.ix_(p, p)]
            G = np.triu(swap_gains(A, Bp), 1)
            r, s = np.unravel_index(int(G.argmax()), G.shape)
            if G[r, s] <= 1e-12 * max(1.0, float(np.abs(A).sum() * np.abs(B).max())):
                break
            p = p.copy()
            p[r], p[s] = p[s], p[r]
        f = float((A * B[np.ix_(p, p)]).sum())
        if f > best_f:
            best_p, best_f = p, f
    return best_p


def _centred_kernel(C: np.ndarray) -> np.ndarray:
    K = C.astype(np.float64) @ C.T.astype(np.float64)
    K -= K.mean(axis=0, keepdims=True)
    K -= K.mean(axis=1, keepdims=True)
    return K


def _procrustes(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    M = _core.align_cross_product(A, B).astype(np.float64)
    U, _, Vt = np.linalg.svd(M, full_matrices=False)
    return U @ Vt


class MiniVec2Vec(Aligner):
    """Unsupervised linear aligner (mini-vec2vec). `.fit(X, Y)` takes embeddings of *different*
    texts from the two encoders; `transform(X)` maps X rows into Y's space (unit direction
    from the learned map, rescaled to Y's typical centred norm and shifted by Y's mean).

    Defaults follow the published notebook: 30 anchor runs of 20-means on subsamples of 10,000
    rows (each the best of `kmeans_init` seeded k-means runs), 30 random restarts of the assignment, pseudo-pairs from the top 50 neighbours, 100
    refinement steps on samples of 1,000 rows, one final 500-means step (fewer clusters when
    there are fewer than 20 rows per cluster).

    One addition to the published recipe: each anchor run is scored by how well its matched
    centroid kernels agree (normalised inner product, 1 for identical geometry), and only the
    best `anchor_keep` fraction of runs provides anchors; k-means runs that split the data
    differently in the two spaces cannot be matched and would otherwise add noise.

    The recipe can land in a wrong local optimum. With restarts > 1 it runs from several
    seeds and keeps the map whose mapped rows sit closest to their neighbours in Y (mean cosine
    of a fixed probe sample to its top-`refine_k` neighbour means; no pairs needed). `history`
    holds the per-step proxies of the kept run.
    """

    _kind = "MiniVec2Vec"

    def __init__(self, n_clusters: int = 20, anchor_runs: int = 30, qap_restarts: int = 30,
                 subsample: int = 10_000, top_k: int = 50, refine_iters: int = 100, refine_sample: int = 1000,
                 refine_k: int = 50, final_clusters: int = 500, final_rounds: int = 1, kmeans_iter: int = 100,
                 kmeans_init: int = 3, anchor_keep: float = 0.5, restarts: int = 1, seed: int = 0, progress: bool | None = None):
        _check_number("n_clusters", n_clusters, 2, integer=True)
        _check_number("anchor_runs", anchor_runs, 1, integer=True)
        _check_number("qap_restarts", qap_restarts, 1, integer=True)
        _check_number("subsample", subsample, 2, integer=True)
        _check_number("top_k", top_k, 1, integer=True)
        _check_number("refine_iters", refine_iters, 0, integer=True)
        _check_number("refine_sample", refine_sample, 1, integer=True)
        _check_number("refine_k", refine_k, 1, integer=True)
        _check_number("final_clusters", final_clusters, 2, integer=True)
        _check_number("final_rounds", final_rounds, 0, integer=True)
        _check_number("kmeans_iter", kmeans_iter, 1, integer=True)
        _check_number("kmeans_init", kmeans_init, 1, integer=True)
        _check_number("anchor_keep", anchor_keep, 0, 1, low_open=True)
        _check_number("restarts", restarts, 1, integer=True)
        _check_number("seed", seed, 0, 2**63 - 1, integer=True)
        self.n_clusters, self.anchor_runs, self.qap_restarts = int(n_clusters), int(anchor_runs), int(qap_restarts)
        self.subsample, self.top_k = int(subsample), int(top_k)
        self.refine_iters, self.refine_sample, self.refine_k = int(refine_iters), int(refine_sample), int(refine_k)
        self.final_clusters, self.final_rounds = int(final_clusters), int(final_rounds)
        self.kmeans_iter, self.kmeans_init, self.anchor_keep = int(kmeans_iter), int(kmeans_init), float(anchor_keep)
        self.restarts, self.seed = int(restarts), int(seed)
        self.progress = progress if progress is None else show_progress(progress)
        self.W: np.ndarray | None = None
        self.mean_x: np.ndarray | None = None
        self.mean_y: np.ndarray | None = None
        self.scale_y: float = 1.0
        self.history: list[dict[str, Any]] = []

    def _params(self) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters, "anchor_runs": self.anchor_runs, "qap_restarts": self.qap_restarts,
                "subsample": self.subsample, "top_k": self.top_k, "refine_iters": self.refine_iters,
                "refine_sample": self.refine_sample, "refine_k": self.refine_k,
                "final_clusters": self.final_clusters, "final_rounds": self.final_rounds,
                "kmeans_iter": self.kmeans_iter, "kmeans_init": self.kmeans_init,
                "anchor_keep": self.anchor_keep, "restarts": self.restarts, "seed": self.seed, "progress": self.progress}

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "scale_y": self.scale_y, "history": self.history}

    def _tensors(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "mean_x": self.mean_x, "mean_y": self.mean_y}

    def _restore(self, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        W, mx, my = tensors["W"], tensors["mean_x"], tensors["mean_y"]
        if W.shape != (self.d_in, self.d_out) or mx.shape != (self.d_in,) or my.shape != (self.d_out,):
            raise ValueError(f"aligner tensors: expected W {(self.d_in, self.d_out)}, means {(self.d_in,)} and "
                             f"{(self.d_out,)}, got {W.shape}, {mx.shape}, {my.shape}")
        self.W, self.mean_x, self.mean_y = W, mx, my
        self.scale_y = float(state["scale_y"])
        self.history = list(state.get("history", []))

    # -- the recipe, step by step --

    def _kmeans(self, Z: np.ndarray, k: int, rng: np.random.Generator, init: np.ndarray | None = None) -> np.ndarray:
        """Centroids of the best (lowest inertia) of `kmeans_init` seeded runs, or one run from `init`."""
        if init is not None:
            return _core.align_kmeans(Z, k, max_iter=self.kmeans_iter, init=init)[0]
        best = None
        for _ in range(self.kmeans_init):
            run = _core.align_kmeans(Z, k, max_iter=self.kmeans_iter, seed=int(rng.integers(2**63)))
            if best is None or run[2] < best[2]:
                best = run
        return best[0]

    def _anchor_pairs(self, Xn: np.ndarray, Yn: np.ndarray, rng: np.random.Generator, bar) -> tuple:
        runs = []
        for _ in range(self.anchor_runs):
            sx = Xn[np.sort(rng.choice(len(Xn), min(self.subsample, len(Xn)), replace=False))]
            sy = Yn[np.sort(rng.choice(len(Yn), min(self.subsample, len(Yn)), replace=False))]
            cx = self._kmeans(sx, self.n_clusters, rng)
            cy = self._kmeans(sy, self.n_clusters, rng)
            kx, ky = _centred_kernel(cx), _centred_kernel(cy)
            perm = qap_maximize(kx, ky, self.qap_restarts, rng)
            # how well the matched kernels agree: 1 when the two centroid sets have the same geometry
            score = float((kx * ky[np.ix_(perm, perm)]).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky) + 1e-30))
            runs.append((score, cx, cy[perm]))
            bar.update(1)
        keep = max(1, int(round(self.anchor_keep * len(runs))))
        runs.sort(key=lambda r: -r[0])
        self.history.append({"stage": "anchor_runs", "kernel_agreement": [round(r[0], 6) for r in runs],
                             "kept": keep})
        return np.concatenate([r[1] for r in runs[:keep]]), np.concatenate([r[2] for r in runs[:keep]])

    def _pseudo_pairs(self, Xn: np.ndarray, Yn: np.ndarray, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
        rx = _core.align_centre_normalise(_core.align_affine(Xn, _core.align_centre_normalise(ax).T.copy()))
        ry = _core.align_centre_normalise(_core.align_affine(Yn, _core.align_centre_normalise(ay).T.copy()))
        return _core.align_topk_mean(rx, ry, Yn, min(self.top_k, len(Yn)))

    def fit(self, X: Any, Y: Any) -> MiniVec2Vec:
        """Learn a map from X's space to Y's from unpaired rows X [n1, d_in], Y [n2, d_out]."""
        from tqdm.auto import tqdm

        X = _matrix(X, "X")
        Y = _matrix(Y, "Y")
        for name, Z in (("X", X), ("Y", Y)):
            if len(Z) < 2 * self.n_clusters:
                raise ValueError(f"{name}: too few rows for {self.n_clusters} clusters: need at least "
                                 f"{2 * self.n_clusters}, got {len(Z)}")
        mx, my = _core.align_col_mean(X), _core.align_col_mean(Y)
        Xn, Yn = _core.align_centre_normalise(X, mx), _core.align_centre_normalise(Y, my)
        final_k = min(self.final_clusters, len(X) // 20, len(Y) // 20)
        rounds = self.final_rounds if final_k >= 2 else 0
        total = self.restarts * (self.anchor_runs + 1 + self.refine_iters + rounds)
        probe = np.ascontiguousarray(Xn[np.random.default_rng(self.seed).permutation(len(Xn))[:self.refine_sample]])
        best = None
        with tqdm(total=total, desc="mini-vec2vec", unit="step", disable=not show_progress(self.progress)) as bar:
            for restart in range(self.restarts):
                self.history = []
                rng = np.random.default_rng(self.seed + restart)
                W = self._fit_once(Xn, Yn, rng, final_k, rounds, bar)
                # the proxy every restart is judged by: mapped probe rows vs their neighbour means
                matched = _core.align_topk_mean(_core.align_affine(probe, W.astype(np.float32)), Yn, Yn,
                                                min(self.refine_k, len(Yn)))
                proxy = self._pair_cosine(probe, matched, W)
                self.history.append({"stage": "result", "restart": restart, "pair_cosine": proxy})
                bar.set_postfix(pair_cosine=round(proxy, 4))
                if best is None or proxy > best[0]:
                    best = (proxy, W, self.history)
        _, W, self.history = best
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        self.mean_x, self.mean_y = mx, my
        self.scale_y = float(np.linalg.norm(Y.astype(np.float64) - my, axis=1).mean())
        self.d_in, self.d_out = X.shape[1], Y.shape[1]
        return self

    def _fit_once(self, Xn: np.ndarray, Yn: np.ndarray, rng: np.random.Generator, final_k: int, rounds: int,
                  bar) -> np.ndarray:
        ax, ay = self._anchor_pairs(Xn, Yn, rng, bar)
        matched = self._pseudo_pairs(Xn, Yn, ax, ay)
        W = _procrustes(Xn, matched)
        self.history.append({"stage": "anchors", "pair_cosine": self._pair_cosine(Xn, matched, W)})
        bar.update(1)
        for it in range(self.refine_iters):
            idx = rng.choice(len(Xn), min(self.refine_sample, len(Xn)), replace=False)
            S = np.ascontiguousarray(Xn[idx])
            matched = _core.align_topk_mean(_core.align_affine(S, W.astype(np.float32)), Yn, Yn,
                                            min(self.refine_k, len(Yn)))
            W = 0.5 * W + 0.5 * _procrustes(S, matched)
            self.history.append({"stage": "refine", "step": it + 1, "pair_cosine": self._pair_cosine(S, matched, W)})
            bar.update(1)
        for _ in range(rounds):
            c1 = self._kmeans(Xn, final_k, rng)
            c2 = self._kmeans(Yn, final_k, rng, init=_core.align_affine(c1, W.astype(np.float32)))
            W = 0.5 * W + 0.5 * _procrustes(c1, c2)
            self.history.append({"stage": "centroids", "pair_cosine": self._pair_cosine(c1, c2, W)})
            bar.update(1)
        return W

    @staticmethod
    def _pair_cosine(A: np.ndarray, B: np.ndarray, W: np.ndarray) -> float:
        """Unsupervised proxy: mean cosine between mapped rows and their pseudo-partners."""
        return float(_core.align_row_cosine(_core.align_affine(A, W.astype(np.float32)), B).mean())

    def transform(self, X: Any) -> np.ndarray:
        """Map rows of X [n, d_in] into Y's space: [n, d_out] float32."""
        X = self._require_fitted(X)
        Z = _core.align_centre_normalise(_core.align_affine(_core.align_centre_normalise(X, self.mean_x), self.W))
        Z *= np.float32(self.scale_y)
        Z += self.mean_y
        return Z
