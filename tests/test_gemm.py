"""The oneDNN general matmul (ops/gemm.c) against its naive reference and NumPy."""
import numpy as np
import pytest

from vec2text_c import _core


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.3)])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 5, 9), (65, 130, 33)])
def test_gemm_matches_reference_and_numpy(rng, ta, tb, alpha, beta, M, N, K):
    a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
    c0 = rng.standard_normal((M, N), dtype=np.float32)
    A = a.T if ta else a
    B = b.T if tb else b
    expect = alpha * (A.astype(np.float64) @ B.astype(np.float64)) + beta * c0
    fast = _core.kernel_gemm(a, b, ta, tb, alpha, beta, c0)
    ref = _core.kernel_gemm(a, b, ta, tb, alpha, beta, c0, reference=True)
    np.testing.assert_allclose(ref, expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-4 * np.sqrt(K))


def test_gemm_beta_zero_ignores_garbage_in_c(rng):
    a = rng.standard_normal((4, 3), dtype=np.float32)
    b = rng.standard_normal((3, 2), dtype=np.float32)
    c0 = np.full((4, 2), np.nan, np.float32)
    np.testing.assert_allclose(_core.kernel_gemm(a, b, c0=c0), a @ b, rtol=1e-5, atol=1e-6)


def test_gemm_empty_inner_dimension_scales_c(rng):
    c0 = rng.standard_normal((3, 4), dtype=np.float32)
    out = _core.kernel_gemm(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), beta=0.5, c0=c0)
    np.testing.assert_allclose(out, 0.5 * c0)
    assert _core.kernel_gemm(np.zeros((0, 5), np.float32), np.zeros((5, 2), np.float32)).shape == (0, 2)


def test_gemm_rejects_mismatched_inner_dimension(rng):
    with pytest.raises(ValueError, match="inner dimension"):
        _core.kernel_gemm(np.zeros((3, 4), np.float32), np.zeros((5, 2), np.float32))


# ---- mixed precision: operands rounded to bf16, f32 accumulation ----

def bf16_round(x):
    """float32 -> nearest-even bfloat16, returned as float32 (NumPy bit arithmetic, NaN kept quiet)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    bits = np.where(nan, (u >> 16) | 0x40, rounded).astype(np.uint32) << 16
    return bits.view(np.float32)


def bf16_bits(x):
    return (bf16_round(x).view(np.uint32) >> 16).astype(np.uint16)


@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (70, 129), (300, 260)])
def test_pack_bf16_matches_reference_and_numpy(rng, trans, shape):
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-40, 38, shape)).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3.0e38, 1.00390625, 1.01171875], np.float32)
    x.flat[rng.choice(x.size, min(x.size, specials.size), replace=False)] = specials[: min(x.size, specials.size)]
    fast = _core.kernel_pack_bf16(x, trans=trans)
    ref = _core.kernel_pack_bf16(x, trans=trans, reference=True)
    expect = bf16_bits(x.T if trans else x)
    assert fast.shape == expect.shape
    np.testing.assert_array_equal(ref, expect)
    np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (8, 8), (31, 33), (64, 96), (300, 260), (1024, 384)])
def test_transpose_matches_reference_and_numpy(rng, shape):
    # (64, 96) and (1024, 384) are whole 32 x 32 tiles (the register path); the others cut tiles at the edge
    a = rng.standard_normal(shape, dtype=np.float32)
    a.flat[:3] = [np.nan, -0.0, np.inf]
    fast = _core.kernel_transpose(a)
    ref = _core.kernel_transpose(a, reference=True)
    assert fast.shape == shape[::-1] and fast.flags.c_contiguous
    np.testing.assert_array_equal(ref, a.T)
    assert fast.tobytes() == np.ascontiguousarray(a.T).tobytes()  # bit for bit, NaN and -0.0 included


bf16_ok = pytest.mark.skipif(not _core.gemm_bf16_supported(), reason="this CPU has no bf16 matmuls (AVX512-BF16/AMX)")


@bf16_ok
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-2.0, 0.3)])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 5, 9), (65, 130, 257)])
def test_gemm_bf16_is_the_product_of_rounded_operands(rng, ta, tb, alpha, beta, M, N, K):
    a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
    c0 = rng.standard_normal((M, N), dtype=np.float32)
    A = bf16_round(a.T if ta else a).astype(np.float64)
    B = bf16_round(b.T if tb else b).astype(np.float64)
    expect = alpha * (A @ B) + beta * c0
    got = _core.kernel_gemm(a, b, ta, tb, alpha, beta, c0, bf16=True)
    # products of bf16 numbers are exact in f32; only the f32 accumulation order differs
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-5 * np.sqrt(K))
    exact = alpha * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b)) + beta * c0
    if K > 100:  # and it is a different product from the f32 one: bf16 rounding shows
        assert np.abs(got - exact).max() > 1e-4
