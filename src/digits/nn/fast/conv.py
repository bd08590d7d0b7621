"""Three ways to compute a 2-D convolution (cross-correlation) and its gradients, for ``digits.nn.Conv2d``,
the cost model that picks one, and the (H, W, N, C) layout they share.

All three work in (H, W, N, C) memory order: ``xh`` is the zero-padded input
(Hp, Wp, N, C), ``dh`` the output gradient (Ho, Wo, N, O); ``weight`` is torch's
(O, C, k, k).  ``forward`` returns the (Ho, Wo, N, O) output and keeps what
``backward`` needs; ``backward`` returns (weight gradient, bias gradient or None,
input gradient (Hp, Wp, N, C) or None).  The batch and channel axes stay innermost,
so every product below is a GEMM over (pixel or frequency, N) rows.

- ``Im2col``: a (k*k*C [+ 1], Ho*Wo*N) column matrix, one strided copy per kernel
  offset, times the weight: one GEMM.  A row of ones makes the bias one more weight
  column, so its gradient comes out of the weight gradient's GEMM.  Any stride.
- ``FFT`` (stride 1): cross-correlation is a product of spectra, ``y^ = x^ conj(w^)``,
  summed over input channels, so one small complex GEMM per frequency.  Transforms
  have the padded input's size, so no valid output wraps around.
- ``Winograd`` (stride 1, k <= 5): F(4x4, kxk).  Each 4x4 output tile comes from a
  (k+3)x(k+3) input tile through ``Y = At [(G g Gt) * (Bt d B)] A``: 64 elementwise
  products instead of 16*25 for k = 5, which again become one GEMM per transform point.
  The transforms (Toom-Cook at 0, +-1, +-2, +-1/2 and infinity) are tiny matrices.
"""

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from digits.nn.fast.parallel import WORKERS, matmul, run_split


class Im2col:
    """Convolution as one GEMM over a column matrix of input windows."""

    def __init__(self, kernel_size, stride):
        self.k, self.s = kernel_size, stride
        self._cache = None

    @staticmethod
    def cost(c, o, k, ho, wo):
        """Multiplications per image for the forward pass."""
        return c * o * k * k * ho * wo

    def forward(self, xh, weight, bias):
        k, s, o = self.k, self.s, len(weight)
        hp, wp, n, c = xh.shape
        ho, wo = (hp - k) // s + 1, (wp - k) // s + 1
        rows = k * k * c + (bias is not None)
        matrix = weight.transpose(0, 2, 3, 1).reshape(o, -1)  # (O, k*k*C), columns (kh, kw, C)
        if bias is not None:
            matrix = np.concatenate([matrix, bias[:, None]], axis=1)
        xc = np.ascontiguousarray(xh).transpose(0, 1, 3, 2)  # (Hp, Wp, C, N): the copies below run along N
        cols = np.empty((rows, ho, wo, n), dtype=xh.dtype)
        out = np.empty((ho, wo, n, o), dtype=xh.dtype)

        def strip(lo, hi):  # output rows lo..hi: their columns are multiplied while still in cache
            block = cols[:, lo:hi]
            windows = block[:k * k * c].reshape(k, k, c, hi - lo, wo, n)
            for i in range(k):
                for j in range(k):
                    top = i + s * lo
                    window = xc[top:top + s * (hi - lo - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
                    windows[i, j] = window.transpose(2, 0, 1, 3)
            if bias is not None:
                block[-1] = 1
            np.matmul(block.reshape(rows, -1).T, matrix.T, out=out[lo:hi].reshape(-1, o))

        run_split(strip, ho, out.size * rows)
        self._cache = (cols.reshape(rows, -1), xh.shape, bias is not None)
        return out

    def backward(self, dh, weight, input_grad):
        cols, (hp, wp, n, c), has_bias = self._cache
        k, s, o = self.k, self.s, len(weight)
        ho, wo = dh.shape[:2]
        drows = np.ascontiguousarray(dh).reshape(-1, o)  # (Ho*Wo*N, O), no copy when dh is a conv output
        grad = matmul(cols, drows, split="inner")  # (k*k*C [+ 1], O)
        w_grad = grad[:k * k * c].T.reshape(o, k, k, c).transpose(0, 3, 1, 2)
        b_grad = grad[-1] if has_bias else None
        if not input_grad:
            return w_grad, b_grad, None
        dcols = matmul(drows, weight.transpose(0, 2, 3, 1).reshape(o, -1)).reshape(ho, wo, n, k, k, c)
        dxh = np.zeros((hp, wp, n, c), dtype=dcols.dtype)
        for i in range(k):
            for j in range(k):
                dxh[i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += dcols[:, :, :, i, j]
        return w_grad, b_grad, dxh


class FFT:
    """Convolution by the convolution theorem, over spectra of the padded input's size (stride 1)."""

    def __init__(self, kernel_size):
        self.k = kernel_size
        self._cache = None

    @staticmethod
    def cost(c, o, k, ho, wo):
        """Multiplications per image: 4*C*O per frequency plus about 2.5 n log2 n per transformed plane."""
        hp, wp = ho + k - 1, wo + k - 1
        plane = hp * wp
        return 4 * c * o * hp * (wp // 2 + 1) + 2.5 * (c + o) * plane * np.log2(plane)

    @staticmethod
    def _inverse(spec, width, ho, wo):
        """Real (ho, wo, ...) top-left corner of the inverse of an rfft2 ``spec`` over axes (0, 1) of a
        plane ``width`` wide: the complex inverse over rows first, so only kept rows go on."""
        rows = scipy.fft.ifft(spec, axis=0, workers=WORKERS)[:ho]
        return scipy.fft.irfft(rows, n=width, axis=1, workers=WORKERS)[:, :wo]

    def forward(self, xh, weight, bias):
        k, o = self.k, len(weight)
        hp, wp, n, c = xh.shape
        x_spec = scipy.fft.rfft2(xh, axes=(0, 1), workers=WORKERS)  # (Hp, Wp//2+1, N, C)
        w_spec = scipy.fft.rfft2(weight.transpose(2, 3, 1, 0), s=(hp, wp), axes=(0, 1), workers=WORKERS)
        freqs = x_spec.shape[0] * x_spec.shape[1]
        y_spec = matmul(x_spec.reshape(freqs, n, c), np.conj(w_spec).reshape(freqs, c, o), "stack")
        if bias is not None:
            y_spec[0] += bias * (hp * wp)  # the zero frequency carries the sum over the plane
        self._cache = (x_spec, w_spec, xh.shape)
        return self._inverse(y_spec.reshape(hp, -1, n, o), wp, hp - k + 1, wp - k + 1)

    def backward(self, dh, weight, input_grad):
        x_spec, w_spec, (hp, wp, n, c) = self._cache
        k, o = self.k, len(weight)
        d_spec = scipy.fft.rfft(dh, n=wp, axis=1, workers=WORKERS)
        d_spec = scipy.fft.fft(d_spec, n=hp, axis=0, workers=WORKERS)  # (Hp, Wf, N, O), zero-padded
        freqs = d_spec.shape[0] * d_spec.shape[1]
        d_spec = d_spec.reshape(freqs, n, o)
        # dw is the correlation of x by dout: spectrum sum_n x^ conj(d^), conjugated to work on the smaller x^
        w_grad_spec = np.conj(matmul(np.conj(x_spec.reshape(freqs, n, c)).transpose(0, 2, 1), d_spec, "stack"))
        w_grad = self._inverse(w_grad_spec.reshape(hp, -1, c, o), wp, k, k).transpose(3, 2, 0, 1)
        b_grad = d_spec[0].real.sum(axis=0)
        if not input_grad:
            return w_grad, b_grad, None
        # dx is the full convolution of dout with w: spectrum d^ w^, summed over output channels
        x_grad_spec = matmul(d_spec, w_spec.reshape(freqs, c, o).transpose(0, 2, 1), "stack")
        return w_grad, b_grad, self._inverse(x_grad_spec.reshape(hp, -1, n, c), wp, hp, wp)


def toom_cook(m, k):
    """Winograd F(m, k) matrices (At (m, a), G (a, k), Bt (a, a)), a = m + k - 1, in float64.

    With points p_0 .. p_{a-2} and infinity: ``At[:, i] = p_i ** (0..m-1)``, ``G[i] =
    p_i ** (0..k-1) / prod_{j != i} (p_i - p_j)``; then ``At @ ((G @ g) * (Bt @ d))`` is the
    valid correlation of d (length a) with g (length k) exactly when ``Bt`` inverts the
    matrix V[s, i] = At[s', i] G[i, j] summed along s' + j = s, which is what is solved for.
    """
    a = m + k - 1
    points = np.array([0, 1, -1, 2, -2, 0.5, -0.5, 3, -3][:a - 1], dtype=np.float64)
    if len(points) < a - 1:
        raise ValueError(f"no Winograd points for F({m}, {k})")
    scale = np.array([np.prod(np.delete(p - points, i)) for i, p in enumerate(points)])
    at = np.zeros((m, a))
    at[:, :-1] = points ** np.arange(m)[:, None]
    at[-1, -1] = 1
    g = np.zeros((a, k))
    g[:-1] = points[:, None] ** np.arange(k) / scale[:, None]
    g[-1, -1] = 1
    v = np.zeros((a, a))
    v[:, :-1] = points ** np.arange(a)[:, None] / scale
    v[-1, -1] = 1
    return at, g, np.linalg.inv(v)


class Winograd:
    """F(4x4, kxk) Winograd convolution (stride 1, 2 <= k <= 5); transform points are stored (column, row)."""

    m = 4

    def __init__(self, kernel_size, dtype):
        self.k = kernel_size
        self.a = self.m + kernel_size - 1
        at, g, bt = toom_cook(self.m, kernel_size)
        self.at, self.bt = at.astype(dtype), bt.astype(dtype)
        # G w Gt for every (O, C) kernel at once: point (col, row) = sum over (kernel col, kernel row)
        self.gg = np.kron(g, g).astype(dtype)  # (a*a, k*k)
        self._cache = None

    @classmethod
    def cost(cls, c, o, k, ho, wo):
        """Multiplications per image: separable input and output transforms plus a*a*C*O per tile."""
        m, a = cls.m, cls.m + k - 1
        tiles = -(-ho // m) * -(-wo // m)
        return tiles * (c * 2 * a ** 3 + a * a * c * o + o * (m * a * a + m * m * a))

    chunk = 8192  # trailing columns transformed at a time: the intermediate (at most 2 MiB) stays in cache

    @classmethod
    def _both_sides(cls, matrix, tiles):
        """``matrix @ t @ matrix.T`` for every (i, j, ...) plane of ``tiles``, returned as (j', i', ...);
        the trailing axes are cut between the cores, and each core's share into ``chunk`` columns."""
        rows, cols = tiles.shape[:2]
        tiles = tiles.reshape(rows, cols, -1)
        out = np.empty((len(matrix), len(matrix), tiles.shape[2]), dtype=np.result_type(matrix, tiles))

        def piece(lo, hi):
            for start in range(lo, hi, cls.chunk):  # whole shares of 16k+ columns ran 2-3x slower (cache misses)
                end = min(start + cls.chunk, hi)
                half = np.matmul(matrix, tiles[:, :, start:end])  # contracts j: (i, j', R)
                np.matmul(matrix, half.transpose(1, 0, 2), out=out[:, :, start:end])  # contracts i: (j', i', R)

        run_split(piece, tiles.shape[2], 2 * len(matrix) * tiles.size)
        return out

    def forward(self, xh, weight, bias):
        k, m, a = self.k, self.m, self.a
        hp, wp, n, c = xh.shape
        o = len(weight)
        ho, wo = hp - k + 1, wp - k + 1
        ty, tx = -(-ho // m), -(-wo // m)
        if (ty * m, tx * m) != (ho, wo):  # round the output up to whole tiles with zero rows and columns
            xh = np.pad(xh, ((0, ty * m - ho), (0, tx * m - wo), (0, 0), (0, 0)))
        tiles = sliding_window_view(xh, (a, a), axis=(0, 1))[::m, ::m]  # (ty, tx, N, C, a, a)
        tiles = np.ascontiguousarray(tiles.transpose(4, 5, 0, 1, 2, 3))  # (a rows, a cols, ty, tx, N, C)
        v = self._both_sides(self.bt, tiles).reshape(a * a, ty * tx * n, c)  # Bt d B per point
        u = (self.gg @ weight.transpose(3, 2, 1, 0).reshape(k * k, -1)).reshape(a * a, c, o)  # G g Gt, like v
        products = matmul(v, u, "stack")  # (a*a, tiles*N, O)
        y = self._both_sides(self.at, products.reshape(a, a, -1))  # At M A: (m rows, m cols, ty, tx, N, O)
        out = np.empty((ty, m, tx, m, n, o), dtype=y.dtype)  # the tiles put side by side, plus the bias
        np.add(y.reshape(m, m, ty, tx, n, o).transpose(2, 0, 3, 1, 4, 5), 0 if bias is None else bias, out=out)
        self._cache = (v, u, xh.shape, (hp, wp), bias is not None)
        return out.reshape(ty * m, tx * m, n, o)[:ho, :wo]

    def backward(self, dh, weight, input_grad):
        v, u, (hpad, wpad, n, c), (hp, wp), has_bias = self._cache
        k, m, a = self.k, self.m, self.a
        o = len(weight)
        ho, wo = dh.shape[:2]
        ty, tx = (hpad - a) // m + 1, (wpad - a) // m + 1
        b_grad = dh.sum(axis=(0, 1, 2)) if has_bias else None
        dtiles = np.zeros((ty, m, tx, m, n, o), dtype=dh.dtype)
        dtiles.reshape(ty * m, tx * m, n, o)[:ho, :wo] = dh
        dtiles = dtiles.transpose(1, 3, 0, 2, 4, 5)  # (m rows, m cols, ty, tx, N, O)
        d_products = self._both_sides(self.at.T, np.ascontiguousarray(dtiles)).reshape(a * a, -1, o)
        u_grad = matmul(v.transpose(0, 2, 1), d_products, "stack")  # (a*a, C, O), stored (col, row)
        w_grad = (self.gg.T @ u_grad.reshape(a * a, -1)).reshape(k, k, c, o).transpose(3, 2, 1, 0)  # Gt dU G
        if not input_grad:
            return w_grad, b_grad, None
        v_grad = matmul(d_products, u.transpose(0, 2, 1), "stack")  # (a*a, tiles*N, C), stored (col, row)
        tiles_grad = self._both_sides(self.bt.T, v_grad.reshape(a, a, -1))  # (a rows, a cols, ty, tx, N, C)
        tiles_grad = tiles_grad.reshape(a, a, ty, tx, n, c)
        dxh = np.zeros((hpad, wpad, n, c), dtype=dh.dtype)
        for i in range(ty):  # neighbouring tiles overlap by k - 1 rows or columns: add
            for j in range(tx):
                dxh[i * m:i * m + a, j * m:j * m + a] += tiles_grad[:, :, i, j]
        return w_grad, b_grad, dxh[:hp, :wp]


_ALGORITHMS = {"im2col": Im2col, "fft": FFT, "winograd": Winograd}


def nchw_hwnc(a):
    """Swap between (N, C, H, W) and (H, W, N, C) without copying (the permutation is its own inverse)."""
    return a.transpose(2, 3, 0, 1)


def cheapest_method(in_channels, out_channels, kernel_size, stride, out_height, out_width):
    """The algorithm with the fewest estimated multiplications for one image's forward pass."""
    usable = ["im2col"] if stride != 1 else ["im2col", "fft"] + (["winograd"] if 2 <= kernel_size <= 5 else [])
    return min(usable, key=lambda name: _ALGORITHMS[name].cost(in_channels, out_channels, kernel_size,
                                                                out_height, out_width))


def algorithm(method, kernel_size, stride, dtype):
    """A fresh ``Im2col``, ``FFT`` or ``Winograd`` object (it caches what its backward pass needs)."""
    if method == "im2col":
        return Im2col(kernel_size, stride)
    return FFT(kernel_size) if method == "fft" else Winograd(kernel_size, dtype)
