"""Supervised linear aligners: Ridge and orthogonal Procrustes. See vec2text_c.align."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from .base import Aligner, _cholesky, _finite_col_mean, _pairs


class _AffineAligner(Aligner):
    """An aligner that is a matrix and an optional offset: transform(X) = X W + b."""

    W: np.ndarray | None = None  # [d_in, d_out]
    b: np.ndarray | None = None  # [d_out] or None

    def transform(self, X: Any) -> np.ndarray:
        """Map rows of X [n, d_in] into the target space: [n, d_out] float32."""
        X = self._require_fitted(X)
        return _core.align_affine(X, self.W, self.b)

    def _tensors(self) -> dict[str, np.ndarray]:
        t = {"W": self.W}
        if self.b is not None:
            t["b"] = self.b
        return t

    def _restore(self, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        W = tensors["W"]
        if W.shape != (self.d_in, self.d_out):
            raise ValueError(f"aligner W: expected shape {(self.d_in, self.d_out)}, got {W.shape}")
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        self.b = tensors.get("b")
        if self.b is not None and self.b.shape != (self.d_out,):
            raise ValueError(f"aligner b: expected shape {(self.d_out,)}, got {self.b.shape}")


class Ridge(_AffineAligner):
    """Ridge regression W = (Xc^T Xc + alpha I)^-1 Xc^T Yc, intercept by centring.

    Solved by Cholesky on the d_in x d_in system (primal form), or on the n x n system
    W = Xc^T (Xc Xc^T + alpha I)^-1 Yc when there are fewer rows than input dimensions (dual
    form). alpha = 0 is plain least squares and needs more rows than input dimensions; a small
    alpha (about 0.1 for unit-norm embeddings and ~1000 pairs) avoids the dip in accuracy where
    the number of rows is near the dimension.
    """

    _kind = "Ridge"

    def __init__(self, alpha: float = 0.1, fit_intercept: bool = True):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not np.isfinite(alpha) \
                or alpha < 0:
            raise ValueError(f"alpha: expected a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.fit_intercept = bool(fit_intercept)

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "fit_intercept": self.fit_intercept}

    def fit(self, X: Any, Y: Any) -> Ridge:
        """Fit on paired rows X [n, d_in], Y [n, d_out]. Returns self."""
        X, Y = _pairs(X, Y, check_finite=False)
        mx, my = _finite_col_mean(X, "X"), _finite_col_mean(Y, "Y")  # the finite check; the means if centring
        if not self.fit_intercept:
            mx = my = None
        n, d1 = X.shape
        need = d1 + (1 if self.fit_intercept else 0)
        if self.alpha == 0 and n < need:
            raise ValueError(f"X: too few rows for least squares without regularisation: {n} rows for {d1} input "
                             f"dimensions (need at least {need}); pass alpha > 0")
        if n >= d1:
            G, C = _core.align_gram_and_cross(X, Y, mx, my)
            G = G.astype(np.float64)
            G[np.diag_indices_from(G)] += self.alpha
            W = _core.align_cholesky_solve(_cholesky(G, "X^T X + alpha I"), C.astype(np.float64))
        else:
            K = _core.align_row_gram(X, mx).astype(np.float64)
            K[np.diag_indices_from(K)] += self.alpha
            Yc = Y.astype(np.float64) - (my if my is not None else 0.0)
            A = _core.align_cholesky_solve(_cholesky(K, "X X^T + alpha I"), Yc)
            W = _core.align_cross_product(X, A.astype(np.float32), mx, None).astype(np.float64)
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        self.b = (my.astype(np.float64) - mx.astype(np.float64) @ W).astype(np.float32) if self.fit_intercept else None
        self.d_in, self.d_out = d1, Y.shape[1]
        return self


class Procrustes(_AffineAligner):
    """Orthogonal Procrustes: W = U V^T from the SVD X^T Y = U S V^T.

    W is orthogonal when both spaces have the same dimension and semi-orthogonal otherwise
    (orthonormal columns if d_in >= d_out, orthonormal rows if d_in < d_out). With scale=True
    the map is s W with s = trace(S) / ||X||_F^2. With center=True both sides are centred
    first and an offset is learned (transform(X) = (X - mean_X) s W + mean_Y).
    """

    _kind = "Procrustes"

    def __init__(self, scale: bool = False, center: bool = False):
        self.scale = bool(scale)
        self.center = bool(center)

    def _params(self) -> dict[str, Any]:
        return {"scale": self.scale, "center": self.center}

    def fit(self, X: Any, Y: Any) -> Procrustes:
        """Fit on paired rows X [n, d_in], Y [n, d_out]. Returns self."""
        X, Y = _pairs(X, Y, check_finite=False)
        mx, my = _finite_col_mean(X, "X"), _finite_col_mean(Y, "Y")  # the finite check; the means if centring
        if not self.center:
            mx = my = None
        n, d1 = X.shape
        d2 = Y.shape[1]
        k = min(d1, d2)
        if n < k:
            raise ValueError(f"X: too few rows for Procrustes: {n} rows cannot determine a rotation of "
                             f"{k} dimensions (need at least {k}); use Ridge for few pairs")
        M = _core.align_cross_product(X, Y, mx, my).astype(np.float64)
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        W = U @ Vt
        if self.scale:
            flat = X.reshape(-1)
            sq = float(np.dot(flat, flat))
            if mx is not None:
                sq -= n * float(np.dot(mx.astype(np.float64), mx))
            if sq <= 0:
                raise ValueError("X: all rows are identical, the scale is undefined")
            W = W * (S.sum() / sq)
        self.W = np.ascontiguousarray(W, dtype=np.float32)
        self.b = (my.astype(np.float64) - mx.astype(np.float64) @ W).astype(np.float32) if self.center else None
        self.d_in, self.d_out = d1, d2
        return self
