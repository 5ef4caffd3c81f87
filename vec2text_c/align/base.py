"""Shared machinery of the aligners: input checks, evaluation, the Aligner base class with
save/load. The public face is vec2text_c.align."""
from __future__ import annotations

import os
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _core
from . import storage


# ---------------------------------------------------------------- input checks


def _matrix(a: Any, name: str, dim: int | None = None, check_finite: bool = True) -> np.ndarray:
    """`a` as a C-contiguous float32 [n, d] array of finite values, or a clear error.

    check_finite=False leaves the finite check to the caller, who must then call
    `_finite_col_mean` (one C pass that checks and averages) or `_require_finite`."""
    if a is None:
        raise TypeError(f"{name}: expected a 2-D float array of embeddings, got None")
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array of embeddings, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [rows, dim], got shape {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one column (an embedding dimension), got shape {tuple(arr.shape)}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} columns (the dimension this aligner was fitted on), "
                         f"got shape {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if check_finite:
        _require_finite(arr, name)
    return arr


def _require_finite(arr: np.ndarray, name: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        what = "NaN" if np.isnan(arr[r, c]) else "Inf"
        raise ValueError(f"{name}: expected finite values, found {what} at row {r}, column {c}")


def _finite_col_mean(arr: np.ndarray, name: str) -> np.ndarray:
    """Column means of a float32 [n, d] array, raising `_require_finite`'s error on NaN or Inf.

    The means are summed in double precision: a sum of finite float32 values cannot overflow a
    double, so a mean is finite exactly when its column is, and one pass does both jobs."""
    mean = _core.align_col_mean(arr)
    if not np.isfinite(mean).all():
        _require_finite(arr, name)
    return mean


def _pairs(X: Any, Y: Any, min_rows: int = 2, check_finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    X = _matrix(X, "X", check_finite=check_finite)
    Y = _matrix(Y, "Y", check_finite=check_finite)
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
        """Whether fit() (or load) has given the aligner its weights."""
        return self.d_in is not None

    def _require_fitted(self, X: Any) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__}: call fit(X, Y) before transform()")
        return _matrix(X, "X", self.d_in)

    def fit_transform(self, X: Any, Y: Any) -> np.ndarray:
        """fit(X, Y), then transform(X)."""
        return self.fit(X, Y).transform(X)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted aligner to the folder `path` (aligner.json + aligner.safetensors)."""
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__}: nothing to save before fit()")
        storage.save(path, self._kind, self._params(), self._state(), self._tensors())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Aligner:
        """Restore an aligner saved with `.save(path)`."""
        config = storage.read_config(path)
        kind = config["class"]
        target = Aligner._registry.get(kind)
        if target is None:
            raise ValueError(f"{path}: unknown aligner class {kind!r}")
        if cls is not Aligner and target is not cls:
            raise ValueError(f"{path}: holds a {kind} aligner, not a {cls._kind}; use vec2text_c.align.load")
        obj = target(**config["params"])
        state = config["state"]
        obj.d_in, obj.d_out = int(state["d_in"]), int(state["d_out"])
        obj._restore(state, storage.read_tensors(path, list(config["tensors"])))
        return obj

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        fitted = f" [{self.d_in} -> {self.d_out}]" if self.fitted else ""
        return f"{type(self).__name__}({args}){fitted}"


def load(path: str | os.PathLike) -> Aligner:
    """Restore any aligner saved with `.save(path)`."""
    return Aligner.load(path)


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


PRECISIONS = ("float32", "bfloat16")


def _check_precision(precision: Any) -> str:
    """A trained aligner's matmul precision: 'float32' (default) or 'bfloat16' (mixed precision:
    matmul operands rounded to bfloat16, float32 accumulation, weights and optimiser in float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected 'float32' or 'bfloat16', got {precision!r}")
    return precision
