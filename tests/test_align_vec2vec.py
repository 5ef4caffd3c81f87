"""vec2vec networks in C: the residual MLP (adapters, backbone) forward and backward against
a PyTorch twin at tiny widths."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vec2text_c import _core


def _twin(depth, d_in, d_h, d_out, norm, flat, stats, x, training=True):
    """The residual MLP written with torch.nn.functional over the same flat parameter layout."""
    p = torch.as_tensor(flat, dtype=torch.float64).requires_grad_(True)
    st = torch.as_tensor(stats, dtype=torch.float64).clone()
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    off, soff = [0], [0]

    def take(n, shape):
        t = p[off[0]:off[0] + n].view(*shape)
        off[0] += n
        return t

    def normed(a, D):
        g, b = take(D, (D,)), take(D, (D,))
        if norm == 1:
            return F.layer_norm(a, (D,), g, b, eps=1e-5)
        rm, rv = st[soff[0]:soff[0] + D], st[soff[0] + D:soff[0] + 2 * D]
        soff[0] += 2 * D
        return F.batch_norm(a, rm, rv, g, b, training=training, momentum=0.1, eps=1e-5)

    def residual(inp, out):
        w = min(inp.shape[1], out.shape[1])
        pad = torch.zeros_like(out)
        pad[:, :w] = inp[:, :w]
        return out + pad

    h = xt
    for i in range(depth):
        last = i == depth - 1 and depth > 1
        iw = d_in if i == 0 else d_h
        if not last:
            ow = d_out if depth == 1 else d_h
            W, b = take(ow * iw, (ow, iw)), take(ow, (ow,))
            out = normed(F.silu(F.linear(h, W, b)), ow)
        else:
            W1, b1 = take(d_h * iw, (d_h, iw)), take(d_h, (d_h,))
            W2, b2 = take(d_out * d_h, (d_out, d_h)), take(d_out, (d_out,))
            out = F.linear(F.silu(F.linear(h, W1, b1)), W2, b2)
        h = residual(h, out)
    y = normed(h, d_out) + h
    assert off[0] == p.numel()
    return y, p, xt, st


@pytest.mark.parametrize("norm", [0, 1])  # BatchNorm1d, LayerNorm
@pytest.mark.parametrize("depth,d_in,d_h,d_out", [(3, 5, 8, 6), (1, 4, 7, 3), (2, 9, 6, 4)])
def test_resmlp_forward_backward_match_pytorch_twin(rng, norm, depth, d_in, d_h, d_out):
    params, stats = _core.resmlp_init(depth, d_in, d_h, d_out, norm, 5)
    params = (params + 0.3 * rng.standard_normal(params.shape)).astype(np.float32)  # away from the init
    stats = (stats + 0.1 * rng.random(stats.shape)).astype(np.float32)
    x = rng.standard_normal((11, d_in)).astype(np.float32)
    dy = rng.standard_normal((11, d_out)).astype(np.float32)
    y, dx, grads, stats_after = _core.kernel_resmlp(depth, d_in, d_h, d_out, norm, params, stats, x, dy)
    ty, tp, tx, tst = _twin(depth, d_in, d_h, d_out, norm, params, stats, x)
    (ty * torch.as_tensor(dy, dtype=torch.float64)).sum().backward()
    rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()  # noqa: E731
    assert rel(y, ty.detach().numpy()) < 1e-5
    assert rel(dx, tx.grad.numpy()) < 1e-4
    assert rel(grads, tp.grad.numpy()) < 1e-4
    np.testing.assert_allclose(stats_after, tst.numpy(), rtol=1e-5, atol=1e-6)
    # inference: running statistics, no dropout
    y_eval = _core.kernel_resmlp(depth, d_in, d_h, d_out, norm, params, stats, x, dy, training=False)[0]
    ty_eval = _twin(depth, d_in, d_h, d_out, norm, params, stats, x, training=False)[0]
    assert rel(y_eval, ty_eval.detach().numpy()) < 1e-5


def test_resmlp_dropout_scales_kept_units_and_is_seeded(rng):
    params, stats = _core.resmlp_init(2, 6, 32, 6, 1, 1)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    dy = np.ones((64, 6), np.float32)
    a = _core.kernel_resmlp(2, 6, 32, 6, 1, params, stats, x, dy, dropout=0.5, seed=3)
    b = _core.kernel_resmlp(2, 6, 32, 6, 1, params, stats, x, dy, dropout=0.5, seed=3)
    c = _core.kernel_resmlp(2, 6, 32, 6, 1, params, stats, x, dy, dropout=0.5, seed=4)
    d = _core.kernel_resmlp(2, 6, 32, 6, 1, params, stats, x, dy, dropout=0.0)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], d[0])
    with pytest.raises(ValueError, match="dropout"):
        _core.kernel_resmlp(2, 6, 32, 6, 1, params, stats, x, dy, dropout=1.0)
