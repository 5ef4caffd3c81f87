"""The MLP aligner: C forward/backward against a PyTorch twin and finite differences, AdamW
against torch.optim.AdamW, determinism, learning, save/load and bad input."""
import numpy as np
import pytest
import torch

from vec2text_c import _core, align


def _twin(widths, params, dtype=torch.float64):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b, dtype=dtype))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(params, dtype=dtype), net.parameters())
    return net


def _flat_grad(net):
    return np.concatenate([p.grad.detach().numpy().ravel() for p in net.parameters()])


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("widths", [[5, 7, 6, 3], [6, 4], [3, 9, 2]])
def test_loss_and_gradient_match_pytorch_twin(rng, widths):
    params = np.random.default_rng(1).uniform(-0.5, 0.5, sum(o * i + o for i, o in zip(widths, widths[1:])))
    params = params.astype(np.float32)
    x = rng.standard_normal((13, widths[0])).astype(np.float32)
    y = rng.standard_normal((13, widths[-1])).astype(np.float32)
    loss, grad = _core.MLPTrainer(widths, params).loss_and_grad(x, y)
    net = _twin(widths, params)
    ref = torch.nn.functional.mse_loss(net(torch.as_tensor(x, dtype=torch.float64)), torch.as_tensor(y, dtype=torch.float64))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    assert _rel(grad, _flat_grad(net)) < 1e-4
    np.testing.assert_allclose(_core.mlp_forward(widths, params, x),
                               net(torch.as_tensor(x, dtype=torch.float64)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_gradient_matches_finite_differences(rng):
    widths = [4, 6, 5, 3]
    n = sum(o * i + o for i, o in zip(widths, widths[1:]))
    params = rng.uniform(-0.6, 0.6, n).astype(np.float32)
    x = rng.standard_normal((9, 4)).astype(np.float32)
    y = rng.standard_normal((9, 3)).astype(np.float32)
    _, grad = _core.MLPTrainer(widths, params).loss_and_grad(x, y)

    def loss_at(p):
        return _core.MLPTrainer(widths, p.astype(np.float32)).loss_and_grad(x, y)[0]

    h = 3e-3
    for _ in range(3):  # directional derivatives along random directions
        v = rng.standard_normal(n)
        v /= np.linalg.norm(v)
        fd = (loss_at(params + h * v) - loss_at(params - h * v)) / (2 * h)
        assert fd == pytest.approx(float(grad.astype(np.float64) @ v), rel=2e-3, abs=1e-5)
    for i in rng.choice(n, 12, replace=False):  # single coordinates
        e = np.zeros(n)
        e[i] = h
        fd = (loss_at(params + e) - loss_at(params - e)) / (2 * h)
        assert fd == pytest.approx(float(grad[i]), rel=2e-3, abs=2e-5)


def test_adamw_steps_match_torch_optim(rng):
    widths = [6, 8, 4]
    model = align.MLP(hidden=8, layers=1, seed=2)
    params = model.init_params(6, 4)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.standard_normal((32, 4)).astype(np.float32)
    trainer = _core.MLPTrainer(widths, params)
    net = _twin(widths, params, dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
    for step in range(5):  # full batch: the shuffled order does not change the gradient
        trainer.train_epoch(x, y, 32, 0.01, 0.05, 0.9, 0.99, 1e-8, step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(torch.as_tensor(x)), torch.as_tensor(y)).backward()
        opt.step()
    assert trainer.step == 5
    ref = torch.nn.utils.parameters_to_vector(net.parameters()).detach().numpy()
    np.testing.assert_allclose(trainer.params(), ref, rtol=1e-4, atol=1e-5)


def _synthetic(rng, n, d):
    X = rng.standard_normal((n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return X, (X @ q + 0.01 * rng.standard_normal((n, d))).astype(np.float32)


def test_training_is_deterministic_and_learns(rng):
    X, Y = _synthetic(rng, 1200, 24)
    kw = dict(hidden=48, layers=1, lr=3e-3, epochs=25, batch_size=64, progress=False)
    a = align.MLP(seed=7, **kw).fit(X[:1000], Y[:1000])
    b = align.MLP(seed=7, **kw).fit(X[:1000], Y[:1000])
    np.testing.assert_array_equal(a.params, b.params)
    assert a.history == b.history
    c = align.MLP(seed=8, **kw).fit(X[:1000], Y[:1000])
    assert not np.array_equal(a.params, c.params)
    assert len(a.history) == 25 and a.history[-1]["loss"] < a.history[0]["loss"] / 5
    assert {"epoch", "loss", "val_loss", "val_cosine", "val_top1"} <= set(a.history[-1])
    scores = align.evaluate(a.transform(X[1000:]), Y[1000:])
    assert scores.top1 >= 0.99, scores


def test_progress_bar_and_save_load(rng, tmp_path, capsys):
    X, Y = _synthetic(rng, 200, 8)
    m = align.MLP(hidden=16, layers=2, epochs=3, batch_size=None, progress=True).fit(X, Y)
    assert "MLP aligner" in capsys.readouterr().err
    m.save(tmp_path / "mlp")
    back = align.MLP.load(tmp_path / "mlp")
    np.testing.assert_array_equal(back.transform(X), m.transform(X))
    assert back.history == m.history and back.widths == [8, 16, 16, 8]
    assert isinstance(align.load(tmp_path / "mlp"), align.MLP)
    # a saved d_out (or d_in) that disagrees with the layer widths is refused, not used
    import json

    cfg_path = tmp_path / "mlp" / "aligner.json"
    cfg = json.loads(cfg_path.read_text())
    for key, value in (("d_out", 9), ("d_in", 4)):
        bad = json.loads(json.dumps(cfg))
        bad["state"][key] = value
        cfg_path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=rf"aligner widths \[8, 16, 16, 8\]: expected to run from d_in "
                                             rf"{bad['state']['d_in']} to d_out {bad['state']['d_out']}"):
            align.MLP.load(tmp_path / "mlp")


def test_bad_input(rng):
    X = rng.standard_normal((10, 4)).astype(np.float32)
    with pytest.raises(RuntimeError, match="before transform"):
        align.MLP().transform(X)
    with pytest.raises(ValueError, match="too few rows"):
        align.MLP(validation=0.1, progress=False).fit(X, X)
    with pytest.raises(ValueError, match="X has 10 rows, Y has 9"):
        align.MLP(progress=False).fit(X, X[:9])
    for kw, name in [({"lr": 0}, "lr"), ({"layers": -1}, "layers"), ({"epochs": 1.5}, "epochs"),
                     ({"batch_size": 0}, "batch_size"), ({"validation": 1.0}, "validation"),
                     ({"hidden": 0}, "hidden")]:
        with pytest.raises(ValueError, match=name):
            align.MLP(**kw)
    m = align.MLP(hidden=4, layers=1, epochs=1, validation=0, progress=False).fit(X, X)
    with pytest.raises(ValueError, match="expected 4 columns"):
        m.transform(X[:, :3])
    with pytest.raises(ValueError, match="params: expected"):
        _core.MLPTrainer([4, 3], np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="widths"):
        _core.MLPTrainer([4], np.zeros(5, np.float32))


def test_restore_best_keeps_the_best_validation_epoch(rng):
    X, Y = _synthetic(rng, 300, 8)
    Y[:] = rng.standard_normal(Y.shape)  # noise targets: validation loss rises once the net overfits
    kw = dict(hidden=64, layers=2, lr=1e-2, epochs=30, batch_size=32, seed=3, progress=False)
    best = align.MLP(**kw).fit(X, Y)
    last = align.MLP(restore_best=False, **kw).fit(X, Y)
    losses = [h["val_loss"] for h in best.history]
    assert best.best_epoch == int(np.argmin(losses)) + 1 < 30
    assert last.best_epoch is None and not np.array_equal(best.params, last.params)
    # the kept weights are the ones training stopped at best_epoch would give
    short = align.MLP(restore_best=False, **{**kw, "epochs": best.best_epoch}).fit(X, Y)
    np.testing.assert_array_equal(best.params, short.params)
    # no validation rows: nothing to select by, the last epoch is kept
    none = align.MLP(validation=0, **{**kw, "epochs": 3}).fit(X, Y)
    assert none.best_epoch is None


# ---------------------------------------------------------------- mixed precision (bfloat16 matmuls)

bf16_ok = pytest.mark.skipif(not _core.gemm_bf16_supported(), reason="this CPU has no bf16 matmuls (AVX512-BF16/AMX)")


def _bf16(t):
    """Round a float64 tensor to the nearest-even bfloat16 value (kept in float64)."""
    return t.to(torch.float32).to(torch.bfloat16).to(torch.float64)


class _RoundedLinear(torch.autograd.Function):
    """y = x W^T + b with every matmul operand rounded to bfloat16 first and exact (float64)
    accumulation: the contract of the C core's precision='bfloat16' products, forward and backward."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        return _bf16(x) @ _bf16(w).T + b

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        return _bf16(dy) @ _bf16(w), _bf16(dy).T @ _bf16(x), dy.sum(0)


@bf16_ok
@pytest.mark.parametrize("widths", [[5, 7, 6, 3], [40, 33, 20]])
def test_bf16_gradient_is_that_of_rounded_matmul_operands(rng, widths):
    params = np.random.default_rng(1).uniform(-0.5, 0.5, sum(o * i + o for i, o in zip(widths, widths[1:])))
    params = params.astype(np.float32)
    x = rng.standard_normal((13, widths[0])).astype(np.float32)
    y = rng.standard_normal((13, widths[-1])).astype(np.float32)
    loss, grad = _core.MLPTrainer(widths, params, precision="bfloat16").loss_and_grad(x, y)
    _, grad32 = _core.MLPTrainer(widths, params).loss_and_grad(x, y)
    net = _twin(widths, params)
    h = torch.as_tensor(x, dtype=torch.float64)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        h = _RoundedLinear.apply(h, lin.weight, lin.bias)
        if i < len(linears) - 1:
            h = torch.relu(h)
    ref = torch.nn.functional.mse_loss(h, torch.as_tensor(y, dtype=torch.float64))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    assert _rel(grad, _flat_grad(net)) < 1e-4
    assert _rel(grad, grad32) > 1e-4  # and it is not the float32 gradient: the rounding is real


@bf16_ok
def test_bf16_weight_mirrors_follow_the_updates(rng):
    # bf16 products read bf16 mirrors of the weights, refreshed at every update: after an epoch of
    # updates the trainer computes exactly what a fresh trainer built from its parameters computes
    widths = [24, 40, 40, 16]
    params = np.random.default_rng(1).uniform(-0.3, 0.3, sum(o * i + o for i, o in zip(widths, widths[1:])))
    tr = _core.MLPTrainer(widths, params.astype(np.float32), precision="bfloat16")
    x = rng.standard_normal((256, 24)).astype(np.float32)
    y = rng.standard_normal((256, 16)).astype(np.float32)
    tr.train_epoch(x, y, 32, 1e-2, 0.0, 0.9, 0.999, 1e-8, 0)
    assert _rel(tr.params(), params) > 1e-2  # the weights did move
    fresh = _core.MLPTrainer(widths, tr.params(), precision="bfloat16")
    la, ga = tr.loss_and_grad(x[:50], y[:50])
    lb, gb = fresh.loss_and_grad(x[:50], y[:50])
    assert la == lb
    np.testing.assert_array_equal(ga, gb)


@bf16_ok
def test_bf16_training_is_deterministic_and_learns(rng):
    X, Y = _synthetic(rng, 1200, 24)
    kw = dict(hidden=48, layers=1, lr=3e-3, epochs=25, batch_size=64, progress=False, precision="bfloat16")
    a = align.MLP(seed=7, **kw).fit(X[:1000], Y[:1000])
    b = align.MLP(seed=7, **kw).fit(X[:1000], Y[:1000])
    np.testing.assert_array_equal(a.params, b.params)
    assert align.evaluate(a.transform(X[1000:]), Y[1000:]).top1 >= 0.99
    f32 = align.MLP(seed=7, **{**kw, "precision": "float32"}).fit(X[:1000], Y[:1000])
    assert not np.array_equal(a.params, f32.params)
    assert a.history[-1]["val_loss"] < 2 * f32.history[-1]["val_loss"]


def test_precision_is_checked_and_saved(rng, tmp_path):
    with pytest.raises(ValueError, match="precision: expected 'float32' or 'bfloat16', got 'bf16'"):
        align.MLP(precision="bf16")
    with pytest.raises(ValueError, match="MLPTrainer: precision must be"):
        _core.MLPTrainer([4, 3], np.zeros(15, np.float32), precision="half")
    X, Y = _synthetic(rng, 64, 4)
    prec = "bfloat16" if _core.gemm_bf16_supported() else "float32"
    m = align.MLP(hidden=4, layers=1, epochs=1, validation=0, progress=False, precision=prec).fit(X, Y)
    m.save(tmp_path / "m")
    assert align.load(tmp_path / "m").precision == prec


def test_matmul_flops_counts_forward_and_backward_products(rng):
    # widths 5-7-6-3, 13 rows: forward and weight gradients 2*13*(35+42+18) each, input gradients
    # of the two upper layers 2*13*(42+18) (the first layer's input needs none)
    widths = [5, 7, 6, 3]
    tr = _core.MLPTrainer(widths, np.zeros(sum(o * i + o for i, o in zip(widths, widths[1:])), np.float32))
    assert tr.matmul_flops == 0.0
    tr.loss_and_grad(rng.standard_normal((13, 5)).astype(np.float32), rng.standard_normal((13, 3)).astype(np.float32))
    assert tr.matmul_flops == 2 * 13 * 95 * 2 + 2 * 13 * 60
