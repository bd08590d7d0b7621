"""Choosing and building the convolution algorithms; the products spread over the cores."""

import numpy as np
import pytest

from digits.nn import Conv2d
from digits.nn.fast import parallel
from digits.nn.fast.conv import cheapest_method, toom_cook


@pytest.mark.parametrize("m, k", [(4, 2), (4, 3), (4, 5), (2, 3)])
def test_toom_cook_matrices_give_the_valid_correlation(m, k):
    at, g, bt = toom_cook(m, k)
    rng = np.random.default_rng(k)
    for _ in range(5):
        d, w = rng.standard_normal(m + k - 1), rng.standard_normal(k)
        expected = [d[i:i + k] @ w for i in range(m)]
        np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((1, 24, 5, 1, 24, 24), "im2col"),   # one input channel: transforms cost more than they save
        ((24, 60, 5, 1, 8, 8), "winograd"),  # the seed network's second convolution
        ((32, 64, 5, 2, 8, 8), "im2col"),    # a stride leaves only im2col
        ((64, 64, 9, 1, 20, 20), "fft"),     # a large kernel over many channels
    ],
)
def test_auto_picks_the_cheapest_algorithm(shape, expected):
    assert cheapest_method(*shape) == expected


def test_a_layer_keeps_one_algorithm_per_input_size():
    layer = Conv2d(8, 8, 3, padding=1, rng=np.random.default_rng(0))
    assert layer.method_for(28, 28) == cheapest_method(8, 8, 3, 1, 28, 28)
    assert Conv2d(8, 8, 3, method="fft", rng=np.random.default_rng(0)).method_for(28, 28) == "fft"
    layer.forward(np.zeros((2, 8, 6, 6), dtype=np.float32))
    layer.forward(np.zeros((2, 8, 9, 9), dtype=np.float32))
    assert len(layer._algorithms) == 2


@pytest.mark.parametrize(
    "a_shape, b_shape, split",
    [((3000, 700), (700, 40), "rows"), ((40, 3000), (3000, 700), "inner"), ((64, 500, 32), (64, 32, 60), "stack"),
     ((3, 5), (5, 2), "rows")],
)
def test_split_products_equal_numpy_and_repeat_bit_for_bit(a_shape, b_shape, split):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape).astype(np.float32), rng.standard_normal(b_shape).astype(np.float32)
    out = parallel.matmul(a, b, split)
    np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out, parallel.matmul(a, b, split))


def test_the_pool_runs_every_piece_once():
    seen = []
    results = parallel.run_split(lambda lo, hi: seen.append((lo, hi)) or hi - lo, 10, work=10**9)
    assert sum(results) == 10 and sorted(seen)[0][0] == 0 and sorted(seen)[-1][1] == 10
    assert len(seen) == min(parallel.WORKERS, 10)


def test_nested_one_blas_thread_blocks_keep_the_limit_until_the_outermost_ends(blas_threads):
    before = blas_threads()
    with parallel.one_blas_thread():
        with parallel.one_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}  # the inner block ending does not lift the outer one's limit
        with pytest.raises(ZeroDivisionError), parallel.one_blas_thread():
            1 / 0
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_winograd_transforms_in_chunks_give_the_same_result(monkeypatch):
    """Transforms run ``Winograd.chunk`` columns at a time: a chunk that does not divide the
    columns (nor the cores' shares) changes nothing but rounding."""
    from digits.nn.fast.conv import Winograd
    rng = np.random.default_rng(1)
    xh = rng.standard_normal((9, 10, 3, 4)).astype(np.float32)  # (Hp, Wp, N, C)
    weight = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    dh = rng.standard_normal((7, 8, 3, 5)).astype(np.float32)  # (Ho, Wo, N, O)

    def run():
        kernel = Winograd(3, np.float32)
        return (kernel.forward(xh, weight, None),) + kernel.backward(dh, weight, True)[::2]

    whole = run()
    monkeypatch.setattr(Winograd, "chunk", 7)
    for chunked, expected in zip(run(), whole):
        np.testing.assert_allclose(chunked, expected, rtol=1e-5, atol=1e-5)
