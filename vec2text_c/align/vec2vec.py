"""vec2vec (Jha, Zhang, Shmatikov, Morris 2025): unsupervised translation between embedding
spaces with adapters, a shared backbone and adversarial, cycle and VSP losses, trained in the
C core. See vec2text_c.align and csrc/align/vec2vec.h for the recipe."""
from __future__ import annotations

import math
import operator

from typing import Any

import numpy as np

from .._progress import show_progress
from .. import _core
from .base import Aligner, _check_number, _check_precision, _matrix, evaluate

_NORMS = {"batch": 0, "layer": 1}


class Vec2Vec(Aligner):
    """Unsupervised aligner with the published vec2vec recipe. `.fit(X, Y)` takes embeddings of
    *different* texts from the two encoders; `transform(X)` maps X rows into Y's space (unit
    rows), `inverse_transform(Y)` maps back.

    Networks: input adapters (X, Y -> latent), a shared backbone (latent -> latent) and output
    adapters (latent -> X, Y), each a residual MLP (SiLU, `norm` in the middle layers, dropout);
    adapters have `adapter_depth` blocks of width `d_hidden`, the backbone `backbone_depth`
    blocks of width `d_backbone`, the latent is `d_latent` wide. Three discriminators of depth
    `disc_depth` and width `disc_width` (LayerNorm, no residual) judge X, Y and the latent.

    Losses (weights): reconstruction 1 - cos (`w_rec`), VSP (`w_vsp`), cycle 1 - cos (`w_cycle`),
    cycle VSP (`w_cycle_vsp`), least-squares GAN on both output spaces (`w_gan`) and on the
    latent (`w_latent_gan`). Adam with `betas`, learning rates `lr` (networks) and `disc_lr`
    (discriminators), linear warm-up over `warmup` updates, gradients clipped to
    `max_grad_norm`. Defaults are the published ones (widths 1024, batch 256).

    Training runs `epochs` passes (each min(len(X), len(Y)) // batch_size steps on freshly
    shuffled, unpaired batches), or exactly `steps` steps when given. After every epoch
    `history` records the mean losses and the unsupervised proxy `cycle_cos` (mean cosine of
    rows to their X -> Y -> X and Y -> X -> Y round trips on up to `proxy_rows` training rows);
    with `validation_data=(X_val, Y_val)` (paired, never trained on) also the held-out cosine,
    top-1 and mean rank. vec2vec is unstable across seeds: the authors train several and keep
    the best by an unsupervised proxy, which `fit_seeds(X, Y, seeds)` does with `cycle_cos`;
    `restore_best=True` keeps the epoch with the best `cycle_cos` instead of the last one.

    Inputs are scaled to unit rows first when `normalize` (as the published training does).

    precision="bfloat16" trains with mixed precision: every matmul's operands are rounded to
    bfloat16 and accumulated in float32 (about twice the float32 matmul rate on CPUs with
    AVX512-BF16 or AMX); parameters, gradients, Adam, the losses and `transform` stay float32.
    """

    _kind = "Vec2Vec"

    def __init__(self, d_latent: int = 1024, d_hidden: int = 1024, d_backbone: int = 1024, adapter_depth: int = 3,
                 backbone_depth: int = 4, disc_depth: int = 5, disc_width: int = 1024, norm: str = "batch",
                 dropout: float = 0.1, epochs: int = 100, steps: int | None = None, batch_size: int = 256,
                 lr: float = 2e-5, disc_lr: float = 1e-5, betas: tuple[float, float] = (0.5, 0.999),
                 eps: float = 1e-8, disc_eps: float = 6.25e-10, warmup: int = 2000, max_grad_norm: float = 1000.0,
                 w_rec: float = 1.0, w_vsp: float = 1.0, w_cycle: float = 10.0, w_cycle_vsp: float = 10.0,
                 w_gan: float = 1.0, w_latent_gan: float = 1.0, normalize: bool = True, proxy_rows: int = 2048,
                 restore_best: bool = False, seed: int = 0, progress: bool | None = None, precision: str = "float32"):
        for name, v in (("d_latent", d_latent), ("d_hidden", d_hidden), ("d_backbone", d_backbone),
                        ("disc_width", disc_width)):
            _check_number(name, v, 1, 1 << 20, integer=True)
        for name, v in (("adapter_depth", adapter_depth), ("backbone_depth", backbone_depth),
                        ("disc_depth", disc_depth)):
            _check_number(name, v, 1, 16, integer=True)
        if norm not in _NORMS:
            raise ValueError(f"norm: expected 'batch' or 'layer', got {norm!r}")
        _check_number("dropout", dropout, 0, 0.99)
        _check_number("epochs", epochs, 0, integer=True)
        if steps is not None:
            _check_number("steps", steps, 0, integer=True)
        _check_number("batch_size", batch_size, 2, integer=True)
        _check_number("lr", lr, 0)
        _check_number("disc_lr", disc_lr, 0)
        if len(betas) != 2:
            raise ValueError(f"betas: expected two numbers, got {betas!r}")
        for i, b in enumerate(betas):
            _check_number(f"betas[{i}]", b, 0, 0.999999)
        _check_number("eps", eps, 0, low_open=True)
        _check_number("disc_eps", disc_eps, 0, low_open=True)
        _check_number("warmup", warmup, 0, integer=True)
        _check_number("max_grad_norm", max_grad_norm, 0)
        for name, v in (("w_rec", w_rec), ("w_vsp", w_vsp), ("w_cycle", w_cycle), ("w_cycle_vsp", w_cycle_vsp),
                        ("w_gan", w_gan), ("w_latent_gan", w_latent_gan)):
            _check_number(name, v, 0)
        _check_number("proxy_rows", proxy_rows, 2, integer=True)
        _check_number("seed", seed, 0, 2**63 - 1, integer=True)
        self.d_latent, self.d_hidden, self.d_backbone = int(d_latent), int(d_hidden), int(d_backbone)
        self.adapter_depth, self.backbone_depth = int(adapter_depth), int(backbone_depth)
        self.disc_depth, self.disc_width = int(disc_depth), int(disc_width)
        self.norm, self.dropout = norm, float(dropout)
        self.epochs, self.steps, self.batch_size = int(epochs), None if steps is None else int(steps), int(batch_size)
        self.lr, self.disc_lr, self.betas = float(lr), float(disc_lr), (float(betas[0]), float(betas[1]))
        self.eps, self.disc_eps, self.warmup = float(eps), float(disc_eps), int(warmup)
        self.max_grad_norm = float(max_grad_norm)
        self.w_rec, self.w_vsp, self.w_cycle = float(w_rec), float(w_vsp), float(w_cycle)
        self.w_cycle_vsp, self.w_gan, self.w_latent_gan = float(w_cycle_vsp), float(w_gan), float(w_latent_gan)
        self.normalize, self.proxy_rows, self.restore_best = bool(normalize), int(proxy_rows), bool(restore_best)
        self.seed = int(seed)
        self.progress = progress if progress is None else show_progress(progress)
        self.precision = _check_precision(precision)
        self.params: np.ndarray | None = None
        self.stats: np.ndarray | None = None
        self.disc_params: np.ndarray | None = None
        self.history: list[dict[str, float]] = []
        self.best_epoch: int | None = None
        self.seed_runs: list[dict[str, float]] = []

    def _params(self) -> dict[str, Any]:
        return {"d_latent": self.d_latent, "d_hidden": self.d_hidden, "d_backbone": self.d_backbone,
                "adapter_depth": self.adapter_depth, "backbone_depth": self.backbone_depth,
                "disc_depth": self.disc_depth, "disc_width": self.disc_width, "norm": self.norm,
                "dropout": self.dropout, "epochs": self.epochs, "steps": self.steps, "batch_size": self.batch_size,
                "lr": self.lr, "disc_lr": self.disc_lr, "betas": list(self.betas), "eps": self.eps,
                "disc_eps": self.disc_eps, "warmup": self.warmup, "max_grad_norm": self.max_grad_norm,
                "w_rec": self.w_rec, "w_vsp": self.w_vsp, "w_cycle": self.w_cycle, "w_cycle_vsp": self.w_cycle_vsp,
                "w_gan": self.w_gan, "w_latent_gan": self.w_latent_gan, "normalize": self.normalize,
                "proxy_rows": self.proxy_rows, "restore_best": self.restore_best, "seed": self.seed,
                "progress": self.progress, "precision": self.precision}

    def config(self, d1: int, d2: int) -> dict[str, Any]:
        """The C core's settings (v2t_v2v_config) for spaces of widths d1 (X) and d2 (Y)."""
        return {"d1": int(d1), "d2": int(d2), "d_latent": self.d_latent, "d_hidden": self.d_hidden,
                "d_backbone": self.d_backbone, "adapter_depth": self.adapter_depth,
                "backbone_depth": self.backbone_depth, "disc_depth": self.disc_depth, "disc_width": self.disc_width,
                "norm": _NORMS[self.norm], "dropout": self.dropout, "w_rec": self.w_rec, "w_vsp": self.w_vsp,
                "w_cc": self.w_cycle, "w_cc_vsp": self.w_cycle_vsp, "w_gan": self.w_gan,
                "w_latent_gan": self.w_latent_gan, "lr_gen": self.lr, "lr_disc": self.disc_lr,
                "beta1": self.betas[0], "beta2": self.betas[1], "eps_gen": self.eps, "eps_disc": self.disc_eps,
                "warmup": self.warmup, "max_grad_norm": self.max_grad_norm}

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "history": self.history, "best_epoch": self.best_epoch,
                "seed_runs": self.seed_runs}

    def _tensors(self) -> dict[str, np.ndarray]:
        t = {"generator": self.params, "discriminators": self.disc_params}
        if self.stats is not None and self.stats.size:
            t["running_stats"] = self.stats
        return t

    def _restore(self, state: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        sizes = _core.vec2vec_sizes(self.config(self.d_in, self.d_out))
        p, d = tensors["generator"], tensors["discriminators"]
        st = tensors.get("running_stats", np.zeros(0, np.float32))
        if p.shape != (sizes["n_params"],) or d.shape != (sizes["n_disc_params"],) or st.shape != (sizes["n_stats"],):
            raise ValueError(f"aligner tensors: expected generator ({sizes['n_params']},), discriminators "
                             f"({sizes['n_disc_params']},), running_stats ({sizes['n_stats']},) for this "
                             f"configuration, got {p.shape}, {d.shape}, {st.shape}")
        self.params, self.disc_params, self.stats = p, d, st
        self.history = list(state.get("history", []))
        self.best_epoch = state.get("best_epoch")
        self.seed_runs = list(state.get("seed_runs", []))

    def _prepare(self, A: np.ndarray) -> np.ndarray:
        return _core.align_centre_normalise(A) if self.normalize else A

    def _translate(self, A: np.ndarray, direction: int, config: dict, params: np.ndarray,
                   stats: np.ndarray) -> np.ndarray:
        return _core.vec2vec_translate(config, params, stats, A, direction)

    def fit(self, X: Any, Y: Any, validation_data: tuple[Any, Any] | None = None) -> Vec2Vec:
        """Train on unpaired rows X [n1, d1] and Y [n2, d2]. Returns self.

        validation_data=(X_val, Y_val): paired held-out rows scored after every epoch (they do
        not influence training, unless restore_best picks an epoch by the unsupervised proxy).
        """
        from tqdm.auto import tqdm

        X, Y, val = self._inputs(X, Y, validation_data)
        per_epoch = min(len(X), len(Y)) // self.batch_size
        config = self.config(X.shape[1], Y.shape[1])
        trainer = _core.Vec2VecTrainer(config, seed=self.seed, precision=self.precision)
        rng = np.random.default_rng(self.seed)
        px = np.ascontiguousarray(X[np.sort(rng.permutation(len(X))[:self.proxy_rows])])
        py = np.ascontiguousarray(Y[np.sort(rng.permutation(len(Y))[:self.proxy_rows])])
        if self.steps is not None:
            total_steps, epochs = self.steps, -(-self.steps // per_epoch)
        else:
            total_steps, epochs = self.epochs * per_epoch, self.epochs
        self.history, self.best_epoch = [], None
        best = None
        done = 0
        bar = tqdm(range(epochs), desc="vec2vec", unit="epoch", disable=not show_progress(self.progress))
        for epoch in bar:
            metrics, steps = trainer.train_epoch(X, Y, self.batch_size, (self.seed * 1_000_003 + epoch) % 2**64,
                                                 max_steps=total_steps - done)
            done += steps
            params, stats = trainer.params(), trainer.stats()
            record = {"epoch": epoch + 1, "steps": done, **metrics}
            record["cycle_cos"] = self._cycle_cosine(px, py, config, params, stats)
            if val is not None:
                scores = evaluate(self._translate(val[0], 0, config, params, stats), val[1])
                record.update(val_cosine=scores.cosine, val_top1=scores.top1, val_rank=scores.mean_rank)
            self.history.append(record)
            bar.set_postfix({k: round(record[k], 4) for k in ("loss", "cycle_cos", "val_top1") if k in record})
            if self.restore_best and (best is None or record["cycle_cos"] > best[0]):
                best = (record["cycle_cos"], epoch + 1, params, stats, trainer.disc_params())
        if best is not None:
            _, self.best_epoch, self.params, self.stats, self.disc_params = best
        else:
            self.params, self.stats, self.disc_params = trainer.params(), trainer.stats(), trainer.disc_params()
        self.d_in, self.d_out = X.shape[1], Y.shape[1]
        return self

    def _inputs(self, X: Any, Y: Any, validation_data: tuple[Any, Any] | None):
        """Checked, prepared training rows and (X_val prepared, Y_val) or None; clear errors."""
        X = self._prepare(_matrix(X, "X"))
        Y = self._prepare(_matrix(Y, "Y"))
        if min(len(X), len(Y)) < self.batch_size:
            raise ValueError(f"X, Y: need at least batch_size={self.batch_size} rows in each space for one step, "
                             f"got {len(X)} and {len(Y)}")
        val = None
        if validation_data is not None:
            Xv, Yv = (_matrix(validation_data[0], "validation_data[0]", X.shape[1]),
                      _matrix(validation_data[1], "validation_data[1]", Y.shape[1]))
            if len(Xv) != len(Yv) or len(Xv) < 2:
                raise ValueError(f"validation_data: expected paired rows (same count, at least 2), got {len(Xv)} "
                                 f"and {len(Yv)}")
            val = (self._prepare(Xv), Yv)
        return X, Y, val

    def fit_seeds(self, X: Any, Y: Any, seeds: Any, validation_data: tuple[Any, Any] | None = None) -> Vec2Vec:
        """Train one run per seed, all other settings equal, and keep the run whose unsupervised
        proxy `cycle_cos` is highest: its last epoch, or its best epoch with restore_best. This is
        how the vec2vec authors deal with runs that fail at random. Returns self, now holding the
        winning run (its seed, history and parameters).

        `seed_runs` lists every run: seed, the epoch and proxy it was ranked by, and with
        validation_data the held-out top-1 and cosine of that epoch. The held-out scores are
        recorded, never used to choose: with unpaired data the proxy is all there is. A run that
        fails (its weights diverge to NaN, say) is recorded with its error and skipped; the call
        raises only when every run fails.
        """
        if isinstance(seeds, (str, bytes)):
            raise ValueError(f"seeds: expected a sequence of integers, got {seeds!r}")
        try:
            seeds = [operator.index(s) for s in seeds]
        except TypeError:
            raise ValueError(f"seeds: expected a sequence of integers, got {seeds!r}") from None
        if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= s < 2**64 for s in seeds):
            raise ValueError(f"seeds: expected one or more distinct integers in [0, 2**64), got {seeds!r}")
        if (self.epochs if self.steps is None else self.steps) < 1:
            raise ValueError(f"fit_seeds: each run needs at least one epoch or step to be ranked, got "
                             f"epochs={self.epochs}, steps={self.steps}")
        self._inputs(X, Y, validation_data)  # bad input fails here, before any run
        runs, best, errors = [], None, []
        for seed in seeds:
            try:
                run = type(self)(**{**self._params(), "seed": seed}).fit(X, Y, validation_data=validation_data)
            except ValueError as e:  # inputs are fine, so the run itself failed (diverged weights)
                runs.append({"seed": seed, "error": str(e)})
                errors.append(e)
                continue
            chosen = run.history[run.best_epoch - 1] if run.best_epoch else run.history[-1]
            proxy = chosen["cycle_cos"]
            runs.append({"seed": seed, "epoch": chosen["epoch"], "cycle_cos": proxy,
                         **{k: chosen[k] for k in ("val_top1", "val_cosine") if k in chosen}})
            if math.isfinite(proxy) and (best is None or proxy > best[0]):
                best = (proxy, run)
        if best is None:
            raise RuntimeError(f"fit_seeds: no run gave a finite proxy (seeds {seeds}); the runs: {runs}") from (
                errors[-1] if errors else None)
        self.__dict__.update(best[1].__dict__)
        self.seed_runs = runs
        return self

    def _cycle_cosine(self, px, py, config, params, stats) -> float:
        back_x = self._translate(self._translate(px, 0, config, params, stats), 1, config, params, stats)
        back_y = self._translate(self._translate(py, 1, config, params, stats), 0, config, params, stats)
        return 0.5 * float(_core.align_row_cosine(back_x, px).mean() + _core.align_row_cosine(back_y, py).mean())

    def transform(self, X: Any) -> np.ndarray:
        """Map rows of X [n, d_in] into Y's space: [n, d_out] float32 unit rows."""
        X = self._prepare(self._require_fitted(X))
        return self._translate(X, 0, self.config(self.d_in, self.d_out), self.params, self.stats)

    def inverse_transform(self, Y: Any) -> np.ndarray:
        """Map rows of Y [n, d_out] into X's space: [n, d_in] float32 unit rows."""
        if not self.fitted:
            raise RuntimeError("Vec2Vec: call fit(X, Y) before inverse_transform()")
        Y = self._prepare(_matrix(Y, "Y", self.d_out))
        return self._translate(Y, 1, self.config(self.d_in, self.d_out), self.params, self.stats)
