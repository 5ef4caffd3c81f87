"""vec2vec in C: the residual MLP, the discriminator, every loss and the whole training step
against a PyTorch twin of the published recipe (tiny widths, float64) and finite differences;
the Vec2Vec aligner's determinism, save/load and bad input."""
import numpy as np
import pytest
import torch

from _v2v_twin import Disc, ResMLP, Twin, cos_loss, vsp
from vec2text_c import _core, align


def _rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def _unit(rng, n, d):
    a = rng.standard_normal((n, d)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


# ---------------------------------------------------------------- residual MLP


@pytest.mark.parametrize("transposed", [True, False])  # forward through transposed weight copies or not
@pytest.mark.parametrize("norm", [0, 1])  # BatchNorm1d, LayerNorm
@pytest.mark.parametrize("depth,d_in,d_h,d_out", [(3, 5, 8, 6), (1, 4, 7, 3), (2, 9, 6, 4), (4, 6, 5, 6)])
def test_resmlp_forward_backward_match_pytorch_twin(rng, norm, depth, d_in, d_h, d_out, transposed):
    params, stats = _core.resmlp_init(depth, d_in, d_h, d_out, norm, 5)
    params = (params + 0.3 * rng.standard_normal(params.shape)).astype(np.float32)  # away from the init
    stats = (stats + 0.1 * rng.random(stats.shape)).astype(np.float32)
    x = rng.standard_normal((11, d_in)).astype(np.float32)
    dy = rng.standard_normal((11, d_out)).astype(np.float32)
    y, dx, grads, stats_after = _core.kernel_resmlp(depth, d_in, d_h, d_out, norm, params, stats, x, dy,
                                                    transposed=transposed)
    net = ResMLP(depth, d_in, d_h, d_out, "batch" if norm == 0 else "layer")
    torch.nn.utils.vector_to_parameters(torch.as_tensor(params, dtype=torch.float64), net.parameters())
    net.set_stats(stats)
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    ty = net.train()(xt)
    (ty * torch.as_tensor(dy, dtype=torch.float64)).sum().backward()
    grad_t = np.concatenate([p.grad.numpy().ravel() for p in net.parameters()])
    assert _rel(y, ty.detach().numpy()) < 1e-5
    assert _rel(dx, xt.grad.numpy()) < 1e-4
    assert _rel(grads, grad_t) < 1e-4
    if norm == 0:
        np.testing.assert_allclose(stats_after, net.get_stats(), rtol=1e-5, atol=1e-6)
    else:
        assert stats.size == 0 and stats_after.size == 0
    # inference: running statistics, no dropout
    net.set_stats(stats)
    y_eval = _core.kernel_resmlp(depth, d_in, d_h, d_out, norm, params, stats, x, dy, training=False,
                                 transposed=transposed)[0]
    assert _rel(y_eval, net.eval()(torch.as_tensor(x, dtype=torch.float64)).detach().numpy()) < 1e-5


def test_resmlp_init_follows_the_published_scales():
    params, stats = _core.resmlp_init(3, 300, 400, 200, 0, 1)
    net = ResMLP(3, 300, 400, 200, "batch")
    torch.nn.utils.vector_to_parameters(torch.as_tensor(params, dtype=torch.float64), net.parameters())
    lin = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    for m in lin:  # Kaiming normal, fan in, ReLU gain
        assert m.weight.std().item() == pytest.approx(np.sqrt(2 / m.in_features), rel=0.03)
        assert m.bias.abs().max().item() == 0
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bn) == 1 and bn[0].weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert bn[0].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    np.testing.assert_array_equal(stats, np.r_[np.zeros(400), np.ones(400)])


def test_resmlp_dropout_scales_kept_units_and_is_seeded(rng):
    params, stats = _core.resmlp_init(3, 6, 32, 6, 1, 1)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    dy = np.ones((64, 6), np.float32)
    a = _core.kernel_resmlp(3, 6, 32, 6, 1, params, stats, x, dy, dropout=0.5, seed=3)
    b = _core.kernel_resmlp(3, 6, 32, 6, 1, params, stats, x, dy, dropout=0.5, seed=3)
    c = _core.kernel_resmlp(3, 6, 32, 6, 1, params, stats, x, dy, dropout=0.5, seed=4)
    d = _core.kernel_resmlp(3, 6, 32, 6, 1, params, stats, x, dy, dropout=0.0)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], d[0])
    with pytest.raises(ValueError, match="dropout"):
        _core.kernel_resmlp(3, 6, 32, 6, 1, params, stats, x, dy, dropout=1.0)


# ---------------------------------------------------------------- discriminator and losses


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_discriminator_matches_pytorch_twin(rng, depth, transposed):
    x = rng.standard_normal((13, 7)).astype(np.float32)
    ds = rng.standard_normal(13).astype(np.float32)
    score, dx, grads, params = _core.kernel_disc(depth, 7, 9, None, x, ds)
    net = Disc(depth, 7, 9)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(params, dtype=torch.float64), net.parameters())
    lin = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert all(m.bias.abs().max().item() == 0 for m in lin)
    params = (params + 0.2 * rng.standard_normal(params.shape)).astype(np.float32)
    score, dx, grads, _ = _core.kernel_disc(depth, 7, 9, params, x, ds, transposed)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(params, dtype=torch.float64), net.parameters())
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    out = net(xt)[:, 0]
    (out * torch.as_tensor(ds, dtype=torch.float64)).sum().backward()
    assert _rel(score, out.detach().numpy()) < 1e-5
    assert _rel(dx, xt.grad.numpy()) < 1e-4
    assert _rel(grads, np.concatenate([p.grad.numpy().ravel() for p in net.parameters()])) < 1e-4


@pytest.mark.parametrize("kind", ["cos", "vsp"])
def test_losses_match_torch_and_finite_differences(rng, kind):
    e = _unit(rng, 10, 6)
    p = (_unit(rng, 10, 6) + 0.5 * e) * rng.uniform(0.5, 2.0, (10, 1)).astype(np.float32)
    loss, grad = _core.kernel_v2v_loss(kind, e, p)
    pt = torch.as_tensor(p, dtype=torch.float64).requires_grad_(True)
    ref = (cos_loss if kind == "cos" else vsp)(torch.as_tensor(e, dtype=torch.float64), pt)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    assert _rel(grad, pt.grad.numpy()) < 1e-4
    h = 1e-3
    for _ in range(3):
        v = rng.standard_normal(p.shape)
        v /= np.linalg.norm(v)
        fd = (_core.kernel_v2v_loss(kind, e, p + h * v)[0] - _core.kernel_v2v_loss(kind, e, p - h * v)[0]) / (2 * h)
        assert fd == pytest.approx(float((grad.astype(np.float64) * v).sum()), rel=2e-3, abs=2e-4)


def test_lsgan_losses_match_torch(rng):
    r = rng.standard_normal(9).astype(np.float32)
    f = rng.standard_normal(9).astype(np.float32)
    ld, gr, gf, lg, gg = _core.kernel_lsgan(r, f)
    rt = torch.as_tensor(r, dtype=torch.float64).requires_grad_(True)
    ft = torch.as_tensor(f, dtype=torch.float64).requires_grad_(True)
    dloss = 0.5 * ((rt ** 2).mean() + ((ft - 1) ** 2).mean())  # real -> 0, fake -> 1
    dloss.backward()
    assert ld == pytest.approx(dloss.item(), rel=1e-6)
    np.testing.assert_allclose(gr, rt.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gf, ft.grad.numpy(), rtol=1e-6)
    ft.grad = None
    gloss = 0.5 * (ft ** 2).mean()
    gloss.backward()
    assert lg == pytest.approx(gloss.item(), rel=1e-6)
    np.testing.assert_allclose(gg, ft.grad.numpy(), rtol=1e-6)


# ---------------------------------------------------------------- the whole step

TINY = dict(d1=5, d2=7, d_latent=6, d_hidden=8, d_backbone=9, adapter_depth=3, backbone_depth=4, disc_depth=3,
            disc_width=10, dropout=0.0)


@pytest.mark.parametrize("extra", [dict(norm=0), dict(norm=1),
                                   dict(norm=0, w_gan=0.0, w_cc=0.0, w_latent_gan=2.0, w_vsp=3.0)])
def test_generator_loss_and_gradient_match_pytorch_twin(rng, extra):
    cfg = {**TINY, **extra}
    tr = _core.Vec2VecTrainer(cfg, seed=3)
    tw = Twin(cfg, _core.vec2vec_sizes(cfg), tr.params(), tr.stats(), tr.disc_params())
    x, y = _unit(rng, 12, 5), _unit(rng, 12, 7)
    m = tr.step(x, y, update_disc=False, update_gen=False)
    o = tw.step(x, y, update_disc=False, update_gen=False)
    for k in ("loss", "rec", "vsp", "cc", "cc_vsp", "gen_x", "gen_y", "gen_latent", "disc_x", "disc_y",
              "disc_latent", "grad_norm"):
        assert m[k] == pytest.approx(o.get(k, 0.0), rel=1e-5, abs=1e-7), k
    assert _rel(tr.grads(), o["grad"]) < 1e-4
    if cfg["norm"] == 0:
        np.testing.assert_allclose(tr.stats(), tw.stats(), rtol=1e-5, atol=1e-6)
    assert tr.updates == 0


def test_generator_gradient_matches_finite_differences(rng):
    # the cycle terms stop the gradient at their first leg, so the step's gradient is the
    # derivative of the loss only without them; the PyTorch twin checks them
    cfg = {**TINY, "norm": 0, "w_cc": 0.0, "w_cc_vsp": 0.0}
    x, y = _unit(rng, 12, 5), _unit(rng, 12, 7)
    tr = _core.Vec2VecTrainer(cfg, seed=4)
    p0, d0 = tr.params(), tr.disc_params()
    tr.step(x, y, update_disc=False, update_gen=False)
    g = tr.grads().astype(np.float64)

    def loss_at(p):
        t = _core.Vec2VecTrainer(cfg, seed=4, params=p.astype(np.float32), disc_params=d0)
        return t.step(x, y, update_disc=False, update_gen=False)["loss"]

    h = 1e-3
    for v in (g / np.linalg.norm(g), rng.standard_normal(g.shape)):
        v = v / np.linalg.norm(v)
        fd = (loss_at(p0 + h * v) - loss_at(p0 - h * v)) / (2 * h)
        assert fd == pytest.approx(float(g @ v), rel=1e-2, abs=5e-3)


def test_training_steps_match_pytorch_twin_with_warmup_and_clipping(rng):
    cfg = {**TINY, "norm": 0, "warmup": 2, "lr_gen": 1e-2, "lr_disc": 2e-2, "max_grad_norm": 1.0}
    tr = _core.Vec2VecTrainer(cfg, seed=5)
    tw = Twin(cfg, _core.vec2vec_sizes(cfg), tr.params(), tr.stats(), tr.disc_params())
    p0, d0 = tr.params(), tr.disc_params()
    for step in range(4):
        x, y = _unit(rng, 12, 5), _unit(rng, 12, 7)
        m, o = tr.step(x, y), tw.step(x, y)
        assert m["loss"] == pytest.approx(o["loss"], rel=1e-4)
        assert m["grad_norm"] > 1.0  # clipping was active
    assert tr.updates == 4
    # warm-up: the first update has learning rate 0, the next ones move the parameters
    assert not np.array_equal(tr.params(), p0) and not np.array_equal(tr.disc_params(), d0)
    np.testing.assert_allclose(tr.params(), tw.gen_flat(), atol=2e-5)
    np.testing.assert_allclose(tr.disc_params(), tw.disc_flat(), atol=2e-5)
    np.testing.assert_allclose(tr.stats(), tw.stats(), rtol=1e-4, atol=1e-5)


def test_first_update_has_zero_learning_rate(rng):
    cfg = {**TINY, "norm": 0, "warmup": 10, "lr_gen": 1e-2}
    tr = _core.Vec2VecTrainer(cfg, seed=1)
    p0 = tr.params()
    tr.step(_unit(rng, 8, 5), _unit(rng, 8, 7))
    np.testing.assert_array_equal(tr.params(), p0)
    tr.step(_unit(rng, 8, 5), _unit(rng, 8, 7))
    assert not np.array_equal(tr.params(), p0)


# ---------------------------------------------------------------- the aligner

SMALL = dict(d_latent=32, d_hidden=32, d_backbone=32, disc_width=32, batch_size=32, warmup=5, lr=1e-3, disc_lr=5e-4)


def _spaces(rng, n=256, d1=12, d2=10):
    X = rng.standard_normal((n, d1)).astype(np.float32)
    M = rng.standard_normal((d1, d2)).astype(np.float32)
    return X, np.tanh(X @ M).astype(np.float32)


def test_fit_is_deterministic_and_records_history(rng, capsys):
    X, Y = _spaces(rng)
    a = align.Vec2Vec(epochs=2, seed=7, progress=True, **SMALL).fit(X[:128], Y[128:], validation_data=(X[:64], Y[:64]))
    assert "vec2vec" in capsys.readouterr().err
    b = align.Vec2Vec(epochs=2, seed=7, progress=False, **SMALL).fit(X[:128], Y[128:],
                                                                      validation_data=(X[:64], Y[:64]))
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.stats, b.stats)
    assert a.history == b.history
    c = align.Vec2Vec(epochs=2, seed=8, progress=False, **SMALL).fit(X[:128], Y[128:])
    assert not np.array_equal(a.params, c.params)
    assert [h["steps"] for h in a.history] == [4, 8]
    assert {"loss", "rec", "vsp", "cc", "cc_vsp", "gen_x", "gen_y", "gen_latent", "disc_x", "disc_y",
            "disc_latent", "cycle_cos", "val_cosine", "val_top1", "val_rank"} <= set(a.history[-1])
    out = a.transform(X[:5])
    assert out.shape == (5, 10) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert a.inverse_transform(Y[:3]).shape == (3, 12)


def test_steps_budget_and_training_lowers_the_losses(rng):
    X, Y = _spaces(rng, 512)
    m = align.Vec2Vec(steps=150, seed=0, progress=False, **SMALL).fit(X[:256], Y[256:])
    assert m.history[-1]["steps"] == 150 and len(m.history) == 19
    first, last = m.history[0], m.history[-1]
    assert last["rec"] < 0.75 * first["rec"] and last["cc"] < 0.6 * first["cc"]
    assert last["cycle_cos"] > first["cycle_cos"] + 0.3


def test_save_load_and_restore_best(rng, tmp_path):
    X, Y = _spaces(rng)
    m = align.Vec2Vec(epochs=3, restore_best=True, norm="batch", progress=False, **SMALL).fit(X[:128], Y[128:])
    best = max(m.history, key=lambda h: h["cycle_cos"])["epoch"]
    assert m.best_epoch == best
    m.save(tmp_path / "v2v")
    back = align.load(tmp_path / "v2v")
    assert isinstance(back, align.Vec2Vec) and back.best_epoch == best
    np.testing.assert_array_equal(back.transform(X[:20]), m.transform(X[:20]))
    ln = align.Vec2Vec(epochs=1, norm="layer", progress=False, **SMALL).fit(X[:128], Y[128:])
    ln.save(tmp_path / "ln")
    np.testing.assert_array_equal(align.Vec2Vec.load(tmp_path / "ln").transform(X[:7]), ln.transform(X[:7]))


def test_fit_seeds_keeps_the_run_with_the_best_proxy(rng, tmp_path):
    X, Y = _spaces(rng)
    kw = dict(epochs=2, progress=False, **SMALL)
    val = (X[:64], Y[:64])
    m = align.Vec2Vec(**kw).fit_seeds(X[:128], Y[128:], seeds=(3, 4, 5), validation_data=val)
    singles = {s: align.Vec2Vec(seed=s, **kw).fit(X[:128], Y[128:], validation_data=val) for s in (3, 4, 5)}
    proxy = {s: r.history[-1]["cycle_cos"] for s, r in singles.items()}
    winner = max(proxy, key=proxy.get)
    assert [r["seed"] for r in m.seed_runs] == [3, 4, 5]
    assert [r["cycle_cos"] for r in m.seed_runs] == [proxy[s] for s in (3, 4, 5)]
    assert [r["val_top1"] for r in m.seed_runs] == [singles[s].history[-1]["val_top1"] for s in (3, 4, 5)]
    assert m.seed == winner and m.history == singles[winner].history
    np.testing.assert_array_equal(m.params, singles[winner].params)
    np.testing.assert_array_equal(m.transform(X[:9]), singles[winner].transform(X[:9]))
    m.save(tmp_path / "seeds")
    assert align.load(tmp_path / "seeds").seed_runs == m.seed_runs
    # with restore_best a run is ranked by its best epoch
    rb = align.Vec2Vec(epochs=3, restore_best=True, **{k: v for k, v in kw.items() if k != "epochs"})
    rb.fit_seeds(X[:128], Y[128:], seeds=[1, 2])
    for r in rb.seed_runs:
        single = align.Vec2Vec(epochs=3, restore_best=True, seed=r["seed"], progress=False, **SMALL)
        single.fit(X[:128], Y[128:])
        assert r["cycle_cos"] == max(h["cycle_cos"] for h in single.history)
        assert r["epoch"] == single.best_epoch
    for bad in ([], [1, 1], "ab", "12", None, [1.5], [-1], [2**64]):
        with pytest.raises(ValueError, match="seeds: expected"):
            align.Vec2Vec(**kw).fit_seeds(X[:128], Y[128:], seeds=bad)
    with pytest.raises(ValueError, match="fit_seeds: each run needs at least one epoch"):
        align.Vec2Vec(**{**kw, "epochs": 0}).fit_seeds(X[:128], Y[128:], seeds=[1])


def test_fit_seeds_survives_failed_runs(rng, monkeypatch):
    # a run whose weights diverge fails inside fit, and a NaN proxy cannot win: both are recorded
    # and skipped; bad input still fails at once, before any run; all runs failing is an error
    X, Y = _spaces(rng)
    kw = dict(epochs=1, progress=False, **SMALL)
    fit, calls = align.Vec2Vec.fit, []

    def flaky(self, X, Y, validation_data=None):
        calls.append(self.seed)
        if self.seed in (4, 6):
            raise ValueError("params: expected finite values, found NaN at index 0")
        out = fit(self, X, Y, validation_data)
        if self.seed == 3:
            out.history[-1]["cycle_cos"] = float("nan")
        return out

    monkeypatch.setattr(align.Vec2Vec, "fit", flaky)
    m = align.Vec2Vec(**kw).fit_seeds(X[:128], Y[128:], seeds=[3, 4, 5])
    assert m.seed == 5 and calls == [3, 4, 5]
    assert np.isnan(m.seed_runs[0]["cycle_cos"]) and m.seed_runs[1] == {"seed": 4, "error": "params: expected "
                                                                         "finite values, found NaN at index 0"}
    np.testing.assert_array_equal(m.params, fit(align.Vec2Vec(seed=5, **kw), X[:128], Y[128:]).params)
    with pytest.raises(RuntimeError, match="fit_seeds: no run gave a finite proxy"):
        align.Vec2Vec(**kw).fit_seeds(X[:128], Y[128:], seeds=[3, 6])
    calls.clear()
    bad = X[:128].copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="X: expected finite values"):
        align.Vec2Vec(**kw).fit_seeds(bad, Y[128:], seeds=[1, 2])
    assert calls == []


def test_bad_input(rng):
    X, Y = _spaces(rng, 64)
    with pytest.raises(RuntimeError, match="before transform"):
        align.Vec2Vec().transform(X)
    with pytest.raises(ValueError, match="batch_size=256"):
        align.Vec2Vec(progress=False).fit(X, Y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN at row 3"):
        align.Vec2Vec(progress=False, **SMALL).fit(bad, Y)
    for kw, name in [({"norm": "group"}, "norm"), ({"batch_size": 1}, "batch_size"), ({"dropout": 1.0}, "dropout"),
                     ({"adapter_depth": 0}, "adapter_depth"), ({"w_gan": -1}, "w_gan"), ({"betas": (0.5,)}, "betas")]:
        with pytest.raises(ValueError, match=name):
            align.Vec2Vec(**kw)
    m = align.Vec2Vec(epochs=1, progress=False, **SMALL).fit(X, Y)
    with pytest.raises(ValueError, match="expected 12 columns"):
        m.transform(Y)
    with pytest.raises(ValueError, match="unknown setting 'width'"):
        _core.Vec2VecTrainer({**TINY, "width": 3})
    with pytest.raises(ValueError, match="params: expected"):
        _core.Vec2VecTrainer(TINY, params=np.zeros(3, np.float32))
    tr = _core.Vec2VecTrainer(TINY)
    with pytest.raises(ValueError, match="at least 2 rows"):
        tr.step(_unit(rng, 1, 5), _unit(rng, 1, 7))
    with pytest.raises(ValueError, match="expected 7 columns"):
        tr.step(_unit(rng, 4, 5), _unit(rng, 4, 5))


# ---------------------------------------------------------------- mixed precision (bfloat16 matmuls)

bf16_ok = pytest.mark.skipif(not _core.gemm_bf16_supported(), reason="this CPU has no bf16 matmuls (AVX512-BF16/AMX)")


@bf16_ok
def test_bf16_step_stays_close_to_the_float64_twin(rng):
    # every matmul of the step (layers, discriminators, VSP Gram matrices) rounds its operands to
    # bfloat16: the gradient moves by about bf16's resolution, no more
    cfg = {**TINY, "norm": 1, "d_hidden": 48, "d_backbone": 40, "disc_width": 32}
    tr = _core.Vec2VecTrainer(cfg, seed=3, precision="bfloat16")
    tw = Twin(cfg, _core.vec2vec_sizes(cfg), tr.params(), tr.stats(), tr.disc_params())
    x, y = _unit(rng, 16, 5), _unit(rng, 16, 7)
    m = tr.step(x, y, update_disc=False, update_gen=False)
    o = tw.step(x, y, update_disc=False, update_gen=False)
    assert m["loss"] == pytest.approx(o["loss"], rel=2e-2)
    err = _rel(tr.grads(), o["grad"])
    assert 1e-5 < err < 5e-2, err
    g, r = tr.grads().astype(np.float64), o["grad"]
    assert g @ r / np.linalg.norm(g) / np.linalg.norm(r) > 0.999


@bf16_ok
def test_bf16_weight_mirrors_follow_the_updates(rng):
    # the bf16 products read bf16 mirrors of the weights that every update refreshes: after a few
    # updates of all five networks and the discriminators, the trainer must compute exactly what a
    # fresh trainer built from its parameters computes (a stale mirror would show here)
    cfg = {**TINY, "warmup": 0, "lr_gen": 1e-2, "lr_disc": 1e-2}
    tr = _core.Vec2VecTrainer(cfg, seed=3, precision="bfloat16")
    start = tr.params()
    for _ in range(3):
        tr.step(_unit(rng, 16, 5), _unit(rng, 16, 7))
    assert _rel(tr.params(), start) > 1e-2  # the weights did move
    fresh = _core.Vec2VecTrainer(cfg, seed=3, params=tr.params(), stats=tr.stats(), disc_params=tr.disc_params(),
                                 precision="bfloat16")
    x, y = _unit(rng, 16, 5), _unit(rng, 16, 7)
    a = tr.step(x, y, update_disc=False, update_gen=False)
    b = fresh.step(x, y, update_disc=False, update_gen=False)
    np.testing.assert_array_equal(tr.grads(), fresh.grads())
    for k in ("loss", "disc_x", "disc_y", "disc_latent", "gen_x", "gen_y", "gen_latent"):
        assert a[k] == b[k], k


@bf16_ok
def test_bf16_fit_is_deterministic_and_lowers_the_losses(rng):
    X, Y = _spaces(rng)
    kw = dict(steps=12, seed=7, progress=False, precision="bfloat16", **SMALL)
    a = align.Vec2Vec(**kw).fit(X[:128], Y[128:])
    b = align.Vec2Vec(**kw).fit(X[:128], Y[128:])
    np.testing.assert_array_equal(a.params, b.params)
    f32 = align.Vec2Vec(**{**kw, "precision": "float32"}).fit(X[:128], Y[128:])
    assert not np.array_equal(a.params, f32.params)
    assert a.history[-1]["rec"] == pytest.approx(f32.history[-1]["rec"], rel=0.05)


def test_precision_is_checked(rng):
    with pytest.raises(ValueError, match="precision: expected 'float32' or 'bfloat16', got 'fp16'"):
        align.Vec2Vec(precision="fp16")
    with pytest.raises(ValueError, match="Vec2VecTrainer: precision must be"):
        _core.Vec2VecTrainer(TINY, precision=16)
