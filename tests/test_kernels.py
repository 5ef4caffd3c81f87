"""Every fast kernel against its naive reference kernel and against NumPy."""
import math

import numpy as np
import pytest

from vec2text_c import _core

ACTS = {
    0: lambda v: v,
    1: lambda v: np.maximum(v, 0),
    2: lambda v: 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2))),
    3: lambda v: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))),
}


@pytest.mark.parametrize("act", [0, 1, 2, 3])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("M", [1, 7, 17, 64, 1043])  # 17 and 1043 (a slab + 19): rows padded to a multiple of 4
def test_linear_matches_reference_and_numpy(rng, act, accumulate, M):
    x = rng.standard_normal((M, 96), dtype=np.float32)
    w = rng.standard_normal((80, 96), dtype=np.float32) * 0.1
    b = rng.standard_normal(80, dtype=np.float32)
    y0 = rng.standard_normal((M, 80), dtype=np.float32)
    fast = _core.kernel_linear(x, w, b, act, accumulate, y0)
    ref = _core.kernel_linear(x, w, b, act, accumulate, y0, reference=True)
    expect = ACTS[act](x.astype(np.float64) @ w.T.astype(np.float64) + b) + (y0 if accumulate else 0)
    np.testing.assert_allclose(ref, expect, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(fast, ref, atol=1e-4, rtol=1e-4)


def test_linear_without_bias_and_zero_rows(rng):
    x = rng.standard_normal((3, 16), dtype=np.float32)
    w = rng.standard_normal((5, 16), dtype=np.float32)
    np.testing.assert_allclose(_core.kernel_linear(x, w, None), x @ w.T, atol=1e-5)
    empty = _core.kernel_linear(np.zeros((0, 16), np.float32), w, None)
    assert empty.shape == (0, 5)


def _attention_numpy(q, k, v, heads, scale, causal, pos_bias, mask):
    B, Tq, F = q.shape
    Bk, Tk, _ = k.shape
    g = B // Bk
    hd = F // heads
    out = np.zeros_like(q, dtype=np.float64)
    lowest = np.float32(np.finfo(np.float32).min)
    for b in range(B):
        kb = b // g
        for h in range(heads):
            sl = slice(h * hd, (h + 1) * hd)
            s = (q[b, :, sl].astype(np.float64) @ k[kb, :, sl].T.astype(np.float64)) * scale
            if pos_bias is not None:
                s = s + pos_bias[h]
            add = np.zeros((Tq, Tk), np.float32)
            if mask is not None:
                add = add + np.where(mask[kb] == 0, lowest, 0).astype(np.float32)[None, :]
            if causal:
                j = np.arange(Tk)[None, :]
                i = np.arange(Tq)[:, None]
                add = np.where(j > i + (Tk - Tq), lowest, add)
            s = (s.astype(np.float32) + add).astype(np.float64)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[b, :, sl] = s @ v[kb, :, sl]
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("kv_group", [1, 3])
@pytest.mark.parametrize("keys_transposed", [False, True])
@pytest.mark.parametrize("Tq", [1, 5])
@pytest.mark.parametrize(("hd", "Tk"), [(6, 7), (64, 70)])  # 64: the in-register head width; 70 keys: blocks + tail
def test_attention_matches_reference_and_numpy(rng, causal, with_bias, kv_group, keys_transposed, Tq, hd, Tk):
    heads, Bk = 4, 2
    B = Bk * kv_group
    q = rng.standard_normal((B, Tq, heads * hd), dtype=np.float32)
    k = rng.standard_normal((Bk, Tk, heads * hd), dtype=np.float32)
    v = rng.standard_normal((Bk, Tk, heads * hd), dtype=np.float32)
    pb = rng.standard_normal((heads, Tq, Tk), dtype=np.float32) if with_bias else None
    mask = np.ones((Bk, Tk), np.int32)
    mask[0, 5:] = 0
    mask[1, :2] = 0
    scale = 1.0 / math.sqrt(hd)
    args = dict(heads=heads, scale=scale, causal=causal, pos_bias=pb, mask=mask, keys_transposed=keys_transposed)
    fast = _core.kernel_attention(q, k, v, **args)
    ref = _core.kernel_attention(q, k, v, reference=True, **args)
    expect = _attention_numpy(q, k, v, heads, scale, causal, pb, mask)
    np.testing.assert_allclose(ref, expect, atol=1e-5)
    np.testing.assert_allclose(fast, ref, atol=1e-5)


@pytest.mark.parametrize("keys_transposed", [False, True])
def test_attention_fully_masked_row_is_uniform_not_nan(rng, keys_transposed):
    q = rng.standard_normal((1, 2, 8), dtype=np.float32)
    k = rng.standard_normal((1, 3, 8), dtype=np.float32)
    v = rng.standard_normal((1, 3, 8), dtype=np.float32)
    mask = np.zeros((1, 3), np.int32)
    out = _core.kernel_attention(q, k, v, heads=2, mask=mask, keys_transposed=keys_transposed)
    assert np.isfinite(out).all()
    ref = _core.kernel_attention(q, k, v, heads=2, mask=mask, reference=True)
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize(("hd", "Tk"), [(6, 7), (64, 70)])
@pytest.mark.parametrize("Tq", [1, 3])
def test_attention_shared_prefixes_read_the_group_leader_and_change_nothing(rng, hd, Tk, Tq):
    # 3 groups of 4 rows (the beams of 3 examples): each row's keys/values copy its group's first
    # row up to share_len (as beams descending from one ancestor do), then differ
    heads, G, groups = 3, 4, 3
    B = G * groups
    q = rng.standard_normal((B, Tq, heads * hd), dtype=np.float32)
    k = rng.standard_normal((B, Tk, heads * hd), dtype=np.float32)
    v = rng.standard_normal((B, Tk, heads * hd), dtype=np.float32)
    share = rng.integers(0, Tk + 3, B)  # past the end is allowed: all keys are shared
    share[::G] = Tk  # the leaders' own entries are not used
    share[1] = 0
    for b in range(B):
        c = min(share[b], Tk)
        k[b, :c], v[b, :c] = k[b - b % G, :c], v[b - b % G, :c]
    pb = rng.standard_normal((heads, Tq, Tk), dtype=np.float32)
    args = dict(heads=heads, scale=1.0, causal=True, pos_bias=pb, keys_transposed=True)
    own = _core.kernel_attention(q, k, v, **args)
    shared = _core.kernel_attention(q, k, v, share_len=share, share_group=G, **args)
    np.testing.assert_array_equal(shared, own)  # bitwise: the same sums in the same order
    np.testing.assert_allclose(own, _core.kernel_attention(q, k, v, reference=True, **args), atol=1e-5)
    # the shared positions are really read from the leader: spoil the followers' copies of them
    spoiled_k, spoiled_v = k.copy(), v.copy()
    for b in range(B):
        if b % G:
            spoiled_k[b, :min(share[b], Tk)] = 1e3
            spoiled_v[b, :min(share[b], Tk)] = -1e3
    np.testing.assert_array_equal(
        _core.kernel_attention(q, spoiled_k, spoiled_v, share_len=share, share_group=G, **args), own)
    with pytest.raises(ValueError, match="share_len"):
        _core.kernel_attention(q, k, v, share_len=share[:-1], share_group=G, **args)


def test_rmsnorm_matches_reference_and_numpy(rng):
    x = rng.standard_normal((9, 48), dtype=np.float32) * 3
    w = rng.standard_normal(48, dtype=np.float32)
    fast = _core.kernel_norm(x, w, eps=1e-6, rms=True)
    ref = _core.kernel_norm(x, w, eps=1e-6, rms=True, reference=True)
    x64 = x.astype(np.float64)
    expect = w * x64 / np.sqrt((x64**2).mean(axis=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(ref, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


def test_layernorm_matches_reference_and_numpy(rng):
    x = rng.standard_normal((9, 48), dtype=np.float32) + 2
    w = rng.standard_normal(48, dtype=np.float32)
    b = rng.standard_normal(48, dtype=np.float32)
    fast = _core.kernel_norm(x, w, b, eps=1e-12, rms=False)
    ref = _core.kernel_norm(x, w, b, eps=1e-12, rms=False, reference=True)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    expect = (x64 - mu) / np.sqrt(((x64 - mu) ** 2).mean(axis=1, keepdims=True) + 1e-12) * w + b
    np.testing.assert_allclose(ref, expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


def _round_bf16(a):
    """float32 -> nearest bfloat16 (ties to even), returned as float32."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("M", [1, 7, 17, 64, 300])
@pytest.mark.parametrize("accumulate", [False, True])
def test_linear_bf16_matches_bf16_rounded_numpy(rng, M, accumulate):
    # bf16 weights: x and W are rounded to bf16, products accumulate in f32
    x = rng.standard_normal((M, 96), dtype=np.float32)
    w = rng.standard_normal((80, 96), dtype=np.float32)
    b = rng.standard_normal(80, dtype=np.float32)
    y0 = rng.standard_normal((M, 80), dtype=np.float32)
    got = _core.kernel_linear(x, w, b, 2, accumulate, y0, bf16=True)
    expect = ACTS[2](_round_bf16(x).astype(np.float64) @ _round_bf16(w).T.astype(np.float64) + b)
    expect = expect + (y0 if accumulate else 0)
    np.testing.assert_allclose(got, expect, atol=2e-5, rtol=1e-5)
    # and it is a genuinely different computation from fp32 (the rounding is visible)
    assert np.abs(got - _core.kernel_linear(x, w, b, 2, accumulate, y0)).max() > 1e-3
