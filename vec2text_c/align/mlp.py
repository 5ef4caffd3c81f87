"""The supervised MLP aligner (training in the C core). See vec2text_c.align."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._progress import show_progress
from .. import _core
from .base import Aligner, _check_number, _check_precision, _pairs, evaluate


class MLP(Aligner):
    """A Linear/ReLU stack trained on mean squared error with AdamW, in the C core.

    `layers` hidden layers of width `hidden` (default: half the target dimension, the MLP of
    the "Squeezing more out of vec2text" write-up); layers=0 is a single Linear layer trained
    by gradient descent. Rows are shuffled every epoch (seeded) and cut into batches of
    `batch_size` (None: full batch). A fraction `validation` of the pairs is held out (seeded)
    and scored after every epoch; `history` holds the per-epoch metrics. With validation rows
    and `restore_best` (the default), the fitted weights are those of the epoch with the lowest
    validation loss (`best_epoch`), not the last epoch's. Weights start as PyTorch's nn.Linear
    does (uniform in +-1/sqrt(fan_in)), drawn from `seed`.

    precision="bfloat16" trains with mixed precision: the matmul operands are rounded to
    bfloat16 and accumulated in float32 (about twice the float32 matmul rate on CPUs with
    AVX512-BF16 or AMX); weights, gradients, AdamW and `transform` stay float32.
    """

    _kind = "MLP"

    def __init__(self, hidden: int | None = None, layers: int = 3, lr: float = 1e-3, epochs: int = 100,
                 batch_size: int | None = 256, weight_decay: float = 0.01, validation: float = 0.1,
                 seed: int = 0, progress: bool | None = None, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, restore_best: bool = True, precision: str = "float32"):
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
        self.progress = progress if progress is None else show_progress(progress)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.restore_best = bool(restore_best)
        self.precision = _check_precision(precision)
        self.best_epoch: int | None = None
        self.widths: list[int] | None = None
        self.params: np.ndarray | None = None
        self.history: list[dict[str, float]] = []

    def _params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "layers": self.layers, "lr": self.lr, "epochs": self.epochs,
                "batch_size": self.batch_size, "weight_decay": self.weight_decay, "validation": self.validation,
                "seed": self.seed, "progress": self.progress, "betas": list(self.betas), "eps": self.eps,
                "restore_best": self.restore_best, "precision": self.precision}

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "widths": self.widths, "history": self.history, "best_epoch": self.best_epoch}

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
        if len(self.widths) < 2 or self.widths[0] != self.d_in or self.widths[-1] != self.d_out:
            raise ValueError(f"aligner widths {self.widths}: expected to run from d_in {self.d_in} to d_out "
                             f"{self.d_out} (the saved state disagrees with itself)")
        self.history = list(state.get("history", []))
        self.best_epoch = state.get("best_epoch")
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
        trainer = _core.MLPTrainer(self.widths, params, precision=self.precision)
        batch = self.batch_size or X.shape[0]
        self.history, self.best_epoch = [], None
        best = None
        bar = tqdm(range(self.epochs), desc="MLP aligner", unit="epoch", disable=not show_progress(self.progress))
        for epoch in bar:
            loss = trainer.train_epoch(X, Y, batch, self.lr, self.weight_decay, self.betas[0], self.betas[1],
                                       self.eps, (self.seed * 1_000_003 + epoch) % 2**64)
            record = {"epoch": epoch + 1, "loss": loss}
            if Xv is not None:
                params = trainer.params()
                pred = _core.mlp_forward(self.widths, params, Xv)
                scores = evaluate(pred, Yv)
                record.update(val_loss=float(np.mean((pred.astype(np.float64) - Yv) ** 2)),
                              val_cosine=scores.cosine, val_top1=scores.top1)
                if self.restore_best and (best is None or record["val_loss"] < best[0]):
                    best = (record["val_loss"], epoch + 1, params)
            self.history.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        if best is not None:
            _, self.best_epoch, self.params = best
        else:
            self.params = trainer.params()
        self.d_in, self.d_out = X.shape[1], Y.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map rows of X [n, d_in] into the target space: [n, d_out] float32."""
        X = self._require_fitted(X)
        return _core.mlp_forward(self.widths, self.params, X)
