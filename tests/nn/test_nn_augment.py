"""Random affine augmentation: torch's grid_sample as the oracle, exact special cases, the random ranges."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digits.nn import RandomAffine, warp_affine


def torch_warp(x, matrices):
    """The same warp through affine_grid + grid_sample (bilinear, zero padding, aligned corners)."""
    n, c, h, w = x.shape
    half = np.diag([(w - 1) / 2, (h - 1) / 2])  # pixels per normalised unit along x and y
    theta = np.concatenate([np.linalg.inv(half) @ matrices[:, :, :2] @ half,
                            np.linalg.inv(half) @ matrices[:, :, 2:]], axis=2)
    grid = F.affine_grid(torch.from_numpy(theta), [n, c, h, w], align_corners=True)
    return F.grid_sample(torch.from_numpy(x), grid, mode="bilinear", padding_mode="zeros", align_corners=True).numpy()


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (3, 2, 9, 13)])
def test_random_warps_match_torch_grid_sample(shape):
    rng = np.random.default_rng(0)
    x = rng.random(shape)
    matrices = RandomAffine(degrees=30, translate=0.1, scale=0.2).matrices(shape[0], shape[2], shape[3], rng)
    np.testing.assert_allclose(warp_affine(x, matrices), torch_warp(x, matrices), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(64, 1, 28, 28), (3, 2, 9, 13)])
def test_float32_warps_match_float64_ones_to_float32_rounding(shape):
    """Coordinates are computed in the images' dtype: a float32 warp of large turns, shifts and zooms
    (corners far outside the image) stays within float32 rounding of the float64 one."""
    rng = np.random.default_rng(3)
    x = rng.random(shape)
    matrices = RandomAffine(degrees=170, translate=0.6, scale=0.8).matrices(shape[0], shape[2], shape[3], rng)
    out = warp_affine(x.astype(np.float32), matrices)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, warp_affine(x, matrices), rtol=0, atol=2e-5)


def test_identity_leaves_images_unchanged_in_their_dtype():
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    out = RandomAffine()(x, np.random.default_rng(2))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x)


def test_whole_pixel_shift_moves_the_image_and_fills_zeros():
    x = np.random.default_rng(3).random((2, 1, 6, 7))
    matrices = np.array([[[1, 0, -2], [0, 1, 1]]] * 2, dtype=float)  # output (col, row) reads input (col-2, row+1)
    expected = np.zeros_like(x)
    expected[:, :, :-1, 2:] = x[:, :, 1:, :-2]
    np.testing.assert_allclose(warp_affine(x, matrices), expected, atol=1e-15)


def test_quarter_turn_is_rot90():
    x = np.random.default_rng(4).random((1, 1, 5, 5))
    matrices = np.array([[[0, -1, 0], [1, 0, 0]]], dtype=float)
    np.testing.assert_allclose(warp_affine(x, matrices), np.rot90(x, k=1, axes=(2, 3)), atol=1e-12)


def test_draws_stay_within_the_ranges_and_change_per_image():
    augment = RandomAffine(degrees=10, translate=0.1, scale=0.1)
    matrices = augment.matrices(2000, 20, 30, np.random.default_rng(5))
    inverse = matrices[:, :, :2]
    scales = 1 / np.sqrt(np.linalg.det(inverse))
    angles = np.degrees(np.arctan2(inverse[:, 0, 1], inverse[:, 0, 0]))
    shifts = -np.linalg.solve(inverse, matrices[:, :, 2:])[:, :, 0]  # the forward map's translation (x, y)
    assert 0.9 <= scales.min() < 0.91 and 1.09 < scales.max() <= 1.1
    assert -10 <= angles.min() < -9.9 and 9.9 < angles.max() <= 10
    assert -3 <= shifts[:, 0].min() < -2.99 and 2.99 < shifts[:, 0].max() <= 3  # 0.1 of the width 30
    assert -2 <= shifts[:, 1].min() < -1.99 and 1.99 < shifts[:, 1].max() <= 2  # 0.1 of the height 20
    np.testing.assert_allclose(inverse[:, 0, 0], inverse[:, 1, 1])  # rotation and zoom only, no shear


def test_augmented_digits_keep_their_ink_roughly():
    x = np.zeros((64, 1, 28, 28))
    x[:, :, 8:20, 12:16] = 1.0  # a bar well inside the frame
    out = RandomAffine(degrees=15, translate=0.07, scale=0.1)(x, np.random.default_rng(6))
    ratio = out.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert np.all((ratio > 0.75) & (ratio < 1.3))  # area scales with s**2 in [0.81, 1.21]
    assert not np.allclose(out[0], out[1])


@pytest.mark.parametrize("kwargs", [{"degrees": -1}, {"degrees": 180}, {"scale": 1.0}, {"translate": -0.1},
                                    {"translate": 1.5}, {"translate": "0.1"}])
def test_bad_ranges_are_refused(kwargs):
    with pytest.raises(ValueError):
        RandomAffine(**kwargs)


def test_warp_refuses_matrices_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\(2, 2, 3\)"):
        warp_affine(np.zeros((2, 1, 4, 4)), np.zeros((2, 3, 3)))
