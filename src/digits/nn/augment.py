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
    """
    n, c, h, w = x.shape
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.shape != (n, 2, 3):
        raise ValueError(f"expected ({n}, 2, 3) matrices for {n} images, got shape {matrices.shape}")
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rows, cols = np.mgrid[0:h, 0:w]
    grid = np.stack([cols.ravel() - cx, rows.ravel() - cy])  # (2, H*W)
    source = matrices[:, :, :2] @ grid + matrices[:, :, 2:]  # (N, 2, H*W)
    sx, sy = source[:, 0] + cx, source[:, 1] + cy
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0).astype(x.dtype), (sy - y0).astype(x.dtype)
    x0, y0 = x0.astype(np.intp), y0.astype(np.intp)
    # one ring of zeros around each image; corner indices clipped onto it read zero
    padded = np.zeros((n, c, h + 2, w + 2), dtype=x.dtype)
    padded[:, :, 1:-1, 1:-1] = x
    flat = padded.reshape(n, c, -1)

    def corner(yy, xx):
        index = (np.clip(yy, -1, h) + 1) * (w + 2) + np.clip(xx, -1, w) + 1  # (N, H*W)
        return np.take_along_axis(flat, index[:, None, :], axis=2)  # (N, C, H*W)

    fx, fy = fx[:, None], fy[:, None]
    top = corner(y0, x0) * (1 - fx) + corner(y0, x0 + 1) * fx
    bottom = corner(y0 + 1, x0) * (1 - fx) + corner(y0 + 1, x0 + 1) * fx
    return (top * (1 - fy) + bottom * fy).reshape(n, c, h, w)


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
