"""Random affine augmentation (rotation, shift, zoom) with bilinear sampling, vectorised over the batch.

Training applies it to each minibatch (``train_epoch(augment=...)``); evaluation
never sees it.  Coordinates are pixels, (column, row), measured from the image
centre ((W-1)/2, (H-1)/2); samples falling outside the image read zeros.
"""

import math

import numpy as np

from digits.nn.layers import real_in


def warp_affine(x, matrices):
    """Resample (N, C, H, W) ``x`` through (N, 2, 3) ``matrices``, in ``x``'s dtype.

    Output pixel p = (col, row), relative to the centre, reads the input at
    ``matrices[n, :, :2] @ p + matrices[n, :, 2]`` (relative to the centre too),
    interpolating bilinearly between the four nearest pixels; pixels beyond the
    border count as zero (``grid_sample`` with zero padding and aligned corners).
    Coordinates are computed in ``x``'s dtype too (float32 is exact to ~1e-6 pixel,
    and the interpolation is continuous, so that costs no more than float32 rounding).
    """
    n, c, h, w = x.shape
    matrices = np.asarray(matrices)
    if matrices.shape != (n, 2, 3):
        raise ValueError(f"expected ({n}, 2, 3) matrices for {n} images, got shape {matrices.shape}")
    matrices = matrices.astype(x.dtype, copy=False)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rows, cols = np.mgrid[0:h, 0:w].astype(x.dtype)
    grid = np.stack([cols.ravel() - cx, rows.ravel() - cy, np.ones(h * w, dtype=x.dtype)])  # (3, H*W)
    # the centre added back to the translation, so one (2N, 3) @ (3, H*W) product gives the source pixels
    from_corner = np.concatenate([matrices[:, :, :2], matrices[:, :, 2:] + np.array([[cx], [cy]], x.dtype)], axis=2)
    sx, sy = (from_corner.reshape(2 * n, 3) @ grid).reshape(n, 2, h * w).transpose(1, 0, 2)  # each (N, H*W)
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[:, None], (sy - y0)[:, None]  # (N, 1, H*W)
    # two rings of zeros around each image: a top-left corner clipped to [-2, size] reads zeros
    # wherever the true one lies outside, and so does its neighbour one row or column further on
    pw, plane = w + 4, (h + 4) * (w + 4)
    padded = np.zeros((n, c, h + 4, pw), dtype=x.dtype)
    padded[:, :, 2:-2, 2:-2] = x
    top_left = ((np.clip(y0, -2, h) + 2) * pw + np.clip(x0, -2, w) + 2).astype(np.intp)  # (N, H*W), exact
    top_left = top_left[:, None] + np.arange(n * c).reshape(n, c, 1) * plane  # (N, C, H*W) flat indices
    flat = padded.ravel()
    # the same indices into the flat array shifted by each corner's offset: four gathers, one index array
    tl, tr, bl, br = (np.take(flat[shift:], top_left) for shift in (0, 1, pw, pw + 1))  # each (N, C, H*W)
    top = tl + fx * (tr - tl)
    bottom = bl + fx * (br - bl)
    return (top + fy * (bottom - top)).reshape(n, c, h, w)


class RandomAffine:
    """Rotate by up to ``degrees`` either way, shift by up to ``translate`` times the width (height)
    along x (y), and zoom by a factor in [1 - scale, 1 + scale], drawn independently per image,
    like torchvision's ``RandomAffine(degrees, (translate, translate), (1 - scale, 1 + scale))``."""

    def __init__(self, degrees=0.0, translate=0.0, scale=0.0):
        self.degrees = real_in("degrees", degrees, 0.0, 180.0)
        self.translate = real_in("translate", translate, 0.0, 1.0, high_inclusive=True)
        self.scale = real_in("scale", scale, 0.0, 1.0)

    def matrices(self, n, height, width, rng):
        """(n, 2, 3) output-to-input maps for ``warp_affine``: the inverse of p -> s R(angle) p + t."""
        angle = np.radians(rng.uniform(-self.degrees, self.degrees, size=n))
        factor = rng.uniform(1 - self.scale, 1 + self.scale, size=n)
        shift = rng.uniform(-self.translate, self.translate, size=(n, 2)) * [width, height]
        cos, sin = np.cos(angle) / factor, np.sin(angle) / factor
        inverse = np.stack([np.stack([cos, sin], axis=1), np.stack([-sin, cos], axis=1)], axis=1)  # R(-angle) / s
        return np.concatenate([inverse, -inverse @ shift[:, :, None]], axis=2)

    def __call__(self, x, rng):
        """Augmented copy of the (N, C, H, W) batch ``x``, drawing the transforms from ``rng``."""
        return warp_affine(x, self.matrices(len(x), x.shape[2], x.shape[3], rng))
