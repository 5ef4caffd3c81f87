"""Aligners: map embeddings of one encoder into the space of another.

An inverter serves one embedder. To invert another encoder's embeddings, map them into the
inverter's space first, then run the correction loop there.

Supervised aligners learn from paired rows (the same texts embedded by both encoders):
`Ridge`, `Procrustes`, `MLP`. All share `.fit(X, Y)`, `.transform(X)`, `.save(path)` and
`Class.load(path)`; `load(path)` restores any aligner. `evaluate(predicted, target)` scores a
mapping on held-out pairs as the vec2vec paper does.

Work that grows with the number of rows (Gram and cross products, affine maps, cosine
matrices) runs in the C core on oneDNN with the GIL released; the small d x d factorisations
(Cholesky, SVD) use LAPACK through NumPy.
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, NamedTuple

import numpy as np

from . import _align_io, _core

__all__ = ["Evaluation", "evaluate", "Ridge", "Procrustes", "MLP", "load"]


# ---------------------------------------------------------------- input checks


def _matrix(a: Any, name: str, dim: int | None = None) -> np.ndarray:
    """`a` as a C-contiguous float32 [n, d] array of finite values, or a clear error."""
    if a is None:
        raise TypeError(f"{name}: expected a 2-D float array of embeddings, got None")
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array of embeddings, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [rows, dim], got shape {tuple(arr.shape)}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} columns (the dimension this aligner was fitted on), "
                         f"got shape {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        what = "NaN" if np.isnan(arr[r, c]) else "Inf"
        raise ValueError(f"{name}: expected finite values, found {what} at row {r}, column {c}")
    return arr


def _pairs(X: Any, Y: Any, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    X = _matrix(X, "X")
    Y = _matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must hold the same texts row by row: X has {X.shape[0]} rows, "
                         f"Y has {Y.shape[0]}")
    if X.shape[0] < min_rows:
        raise ValueError(f"X: too few rows to fit, need at least {min_rows}, got {X.shape[0]}")
    return X, Y


def _cholesky(a: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        raise ValueError(f"{what} is not positive definite (collinear or constant columns?); "
                         f"use a larger alpha") from None


# ---------------------------------------------------------------- evaluation


class Evaluation(NamedTuple):
    """Scores of a mapping on held-out pairs (vec2vec paper protocol)."""

    cosine: float          # mean cos(F(x_i), y_i)
    centred_cosine: float  # the same after subtracting each side's mean (removes anisotropy)
    top1: float            # fraction of rows whose nearest target (by cosine) is their partner
    mean_rank: float       # mean 1-indexed rank of the partner among its chunk (random: chunk / 2)
    n: int                 # rows evaluated


def evaluate(predicted: Any, target: Any, chunk_size: int = 8192) -> Evaluation:
    """Score `predicted` [n, d] (an aligner's output) against the true `target` [n, d].

    The rows are cut into consecutive chunks of `chunk_size` (8192 in the vec2vec paper);
    top-1 and rank are computed within each chunk over the chunk's cosine matrix, then
    averaged over all rows. The centred cosine subtracts the mean of `predicted` from its rows
    and the mean of `target` from its rows before taking cosines.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    P = _matrix(predicted, "predicted")
    T = _matrix(target, "target")
    if P.shape != T.shape:
        raise ValueError(f"target: expected the shape of predicted {tuple(P.shape)}, got {tuple(T.shape)}")
    if P.shape[0] < 2:
        raise ValueError(f"predicted: need at least 2 rows to rank, got {P.shape[0]}")
    cos = _core.align_row_cosine(P, T)
    centred = _core.align_row_cosine(P, T, _core.align_col_mean(P), _core.align_col_mean(T))
    rank, top1 = _core.align_retrieval_ranks(P, T, int(chunk_size))
    return Evaluation(cosine=float(cos.mean(dtype=np.float64)), centred_cosine=float(centred.mean(dtype=np.float64)),
                      top1=float(top1.mean()), mean_rank=float(rank.mean()), n=int(P.shape[0]))


# ---------------------------------------------------------------- common machinery


class Aligner:
    """Base class: dimensions, transform through an affine map, save and load."""

    _kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[Aligner]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls._kind:
            Aligner._registry[cls._kind] = cls

    d_in: int | None = None
    d_out: int | None = None

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _tensors(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return {"d_in": self.d_in, "d_out": self.d_out}

    @property
    def fitted(self) -> bool:
        return self.d_in is not None

    def _require_fitted(self, X: Any) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__}: call fit(X, Y) before transform()")
        return _matrix(X, "X", self.d_in)

    def fit_transform(self, X: Any, Y: Any) -> np.ndarray:
        return self.fit(X, Y).transform(X)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted aligner to the folder `path` (aligner.json + aligner.safetensors)."""
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__}: nothing to save before fit()")
        _align_io.save(path, self._kind, self._params(), self._state(), self._tensors())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Aligner:
        """Restore an aligner saved with `.save(path)`."""
        config = _align_io.read_config(path)
        kind = config["class"]
        target = Aligner._registry.get(kind)
        if target is None:
            raise ValueError(f"{path}: unknown aligner class {kind!r}")
        if cls is not Aligner and target is not cls:
            raise ValueError(f"{path}: holds a {kind} aligner, not a {cls._kind}; use vec2text_c.align.load")
        obj = target(**config["params"])
        state = config["state"]
        obj.d_in, obj.d_out = int(state["d_in"]), int(state["d_out"])
        obj._restore(state, _align_io.read_tensors(path, list(config["tensors"])))
        return obj

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        fitted = f" [{self.d_in} -> {self.d_out}]" if self.fitted else ""
        return f"{type(self).__name__}({args}){fitted}"


def load(path: str | os.PathLike) -> Aligner:
    """Restore any aligner saved with `.save(path)`."""
    return Aligner.load(path)


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


# ---------------------------------------------------------------- supervised linear aligners


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
        X, Y = _pairs(X, Y)
        n, d1 = X.shape
        need = d1 + (1 if self.fit_intercept else 0)
        if self.alpha == 0 and n < need:
            raise ValueError(f"X: too few rows for least squares without regularisation: {n} rows for {d1} input "
                             f"dimensions (need at least {need}); pass alpha > 0")
        mx = _core.align_col_mean(X) if self.fit_intercept else None
        my = _core.align_col_mean(Y) if self.fit_intercept else None
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
        X, Y = _pairs(X, Y)
        n, d1 = X.shape
        d2 = Y.shape[1]
        k = min(d1, d2)
        if n < k:
            raise ValueError(f"X: too few rows for Procrustes: {n} rows cannot determine a rotation of "
                             f"{k} dimensions (need at least {k}); use Ridge for few pairs")
        mx = _core.align_col_mean(X) if self.center else None
        my = _core.align_col_mean(Y) if self.center else None
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


# ---------------------------------------------------------------- supervised MLP aligner


def _check_number(name: str, value: Any, low: float, high: float = np.inf, integer: bool = False,
                  low_open: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = not isinstance(value, bool) and isinstance(value, kinds) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f"> {low}" if low_open else f">= {low}"
        rng = f"{bound}" + (f" and <= {high}" if high != np.inf else "")
        raise ValueError(f"{name}: expected {kind} {rng}, got {value!r}")


class MLP(Aligner):
    """A Linear/ReLU stack trained on mean squared error with AdamW, in the C core.

    `layers` hidden layers of width `hidden` (default: half the target dimension, the MLP of
    the "Squeezing more out of vec2text" write-up); layers=0 is a single Linear layer trained
    by gradient descent. Rows are shuffled every epoch (seeded) and cut into batches of
    `batch_size` (None: full batch). A fraction `validation` of the pairs is held out (seeded)
    and scored after every epoch; `history` holds the per-epoch metrics. Weights start as
    PyTorch's nn.Linear does (uniform in +-1/sqrt(fan_in)), drawn from `seed`.
    """

    _kind = "MLP"

    def __init__(self, hidden: int | None = None, layers: int = 3, lr: float = 1e-3, epochs: int = 100,
                 batch_size: int | None = 256, weight_decay: float = 0.01, validation: float = 0.1,
                 seed: int = 0, progress: bool = True, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        if hidden is not None:
            _check_number("hidden", hidden, 1, integer=True)
        _check_number("layers", layers, 0, 15, integer=True)
        _check_number("lr", lr, 0, low_open=True)
        _check_number("epochs", epochs, 0, integer=True)
        if batch_size is not None:
            _check_number("batch_size", batch_size, 1, integer=True)
        _check_number("weight_decay", weight_decay, 0)
        _check_number("validation", validation, 0, 0.9)
        _check_number("seed", seed, 0, 2**63 - 1, integer=True)
        if len(betas) != 2:
            raise ValueError(f"betas: expected two numbers, got {betas!r}")
        for i, b in enumerate(betas):
            _check_number(f"betas[{i}]", b, 0, 1)
        _check_number("eps", eps, 0, low_open=True)
        self.hidden = None if hidden is None else int(hidden)
        self.layers = int(layers)
        self.lr = float(lr)
        self.epochs = int(epochs)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.weight_decay = float(weight_decay)
        self.validation = float(validation)
        self.seed = int(seed)
        self.progress = bool(progress)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.widths: list[int] | None = None
        self.params: np.ndarray | None = None
        self.history: list[dict[str, float]] = []

    def _params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "layers": self.layers, "lr": self.lr, "epochs": self.epochs,
                "batch_size": self.batch_size, "weight_decay": self.weight_decay, "validation": self.validation,
                "seed": self.seed, "progress": self.progress, "betas": list(self.betas), "eps": self.eps}

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "widths": self.widths, "history": self.history}

    def _layer_views(self) -> list[tuple[np.ndarray, np.ndarray]]:
        views, off = [], 0
        for i, o in zip(self.widths[:-1], self.widths[1:]):
            w = self.params[off:off + i * o].reshape(o, i)
            off += i * o
            views.append((w, self.params[off:off + o]))
            off += o
        return views

    def _tensors(self) -> dict[str, np.ndarray]:
        t = {}
        for k, (w, b) in enumerate(self._layer_views()):
            t[f"layers.{k}.weight"] = w
            t[f"layers.{k}.bias"] = b
        return t

    def _restore(self, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.widths = [int(w) for w in state["widths"]]
        self.history = list(state.get("history", []))
        parts = []
        for k, (i, o) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            w, b = tensors[f"layers.{k}.weight"], tensors[f"layers.{k}.bias"]
            if w.shape != (o, i) or b.shape != (o,):
                raise ValueError(f"aligner layer {k}: expected weight {(o, i)} and bias {(o,)}, "
                                 f"got {w.shape} and {b.shape}")
            parts += [w.ravel(), b]
        self.params = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def init_params(self, d_in: int, d_out: int) -> np.ndarray:
        """Initial flat parameters for these dimensions (nn.Linear's default init, seeded)."""
        hidden = self.hidden if self.hidden is not None else max(d_out // 2, 1)
        self.widths = [d_in] + [hidden] * self.layers + [d_out]
        rng = np.random.default_rng(self.seed)
        parts = []
        for i, o in zip(self.widths[:-1], self.widths[1:]):
            bound = 1.0 / np.sqrt(i)
            parts.append(rng.uniform(-bound, bound, size=o * i))
            parts.append(rng.uniform(-bound, bound, size=o))
        return np.concatenate(parts).astype(np.float32)

    def fit(self, X: Any, Y: Any, validation_data: tuple[Any, Any] | None = None) -> MLP:
        """Train on paired rows X [n, d_in], Y [n, d_out]. Returns self.

        validation_data=(X_val, Y_val) replaces the held-out fraction `validation`.
        """
        from tqdm.auto import tqdm

        X, Y = _pairs(X, Y)
        n = X.shape[0]
        if validation_data is not None:
            Xv, Yv = _pairs(*validation_data)
            if Xv.shape[1] != X.shape[1] or Yv.shape[1] != Y.shape[1]:
                raise ValueError(f"validation_data: expected columns {X.shape[1]} and {Y.shape[1]}, "
                                 f"got {Xv.shape[1]} and {Yv.shape[1]}")
        elif self.validation > 0:
            n_val = int(round(n * self.validation))
            if n_val < 2 or n - n_val < 1:
                raise ValueError(f"X: too few rows ({n}) to hold out a validation fraction of {self.validation}; "
                                 f"pass validation=0 or more rows")
            perm = np.random.default_rng(self.seed).permutation(n)
            Xv, Yv = X[perm[:n_val]], Y[perm[:n_val]]
            X, Y = np.ascontiguousarray(X[perm[n_val:]]), np.ascontiguousarray(Y[perm[n_val:]])
        else:
            Xv = Yv = None
        params = self.init_params(X.shape[1], Y.shape[1])
        trainer = _core.MLPTrainer(self.widths, params)
        batch = self.batch_size or X.shape[0]
        self.history = []
        bar = tqdm(range(self.epochs), desc="MLP aligner", unit="epoch", disable=not self.progress)
        for epoch in bar:
            loss = trainer.train_epoch(X, Y, batch, self.lr, self.weight_decay, self.betas[0], self.betas[1],
                                       self.eps, (self.seed * 1_000_003 + epoch) % 2**64)
            record = {"epoch": epoch + 1, "loss": loss}
            if Xv is not None:
                pred = _core.mlp_forward(self.widths, trainer.params(), Xv)
                scores = evaluate(pred, Yv)
                record.update(val_loss=float(np.mean((pred.astype(np.float64) - Yv) ** 2)),
                              val_cosine=scores.cosine, val_top1=scores.top1)
            self.history.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        self.params = trainer.params()
        self.d_in, self.d_out = X.shape[1], Y.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map rows of X [n, d_in] into the target space: [n, d_out] float32."""
        X = self._require_fitted(X)
        return _core.mlp_forward(self.widths, self.params, X)
