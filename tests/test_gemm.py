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
