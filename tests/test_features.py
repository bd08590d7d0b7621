import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SklearnPCA

from digits.errors import DigitsError
from digits.features import PCA, Blur, Deskew, Transforms


@pytest.fixture(scope="module")
def images():
    """120 digits as uint8 (120, 28, 28): scikit-learn's 8x8 digits, each pixel made 3x3, in a 2-pixel border."""
    small = load_digits().images[:120]
    big = np.kron(small, np.ones((3, 3))) * (255 / 16)
    return np.pad(big, ((0, 0), (2, 2), (2, 2))).round().astype(np.uint8)


def naive_deskew(image):
    """Deskew one image pixel by pixel: moments by explicit sums, bilinear sampling with zeros outside."""
    image = image.astype(np.float64)
    h, w = image.shape
    total = r0 = c0 = 0.0
    for r in range(h):
        for c in range(w):
            total += image[r, c]
            r0 += r * image[r, c]
            c0 += c * image[r, c]
    r0, c0 = r0 / total, c0 / total
    var = cov = 0.0
    for r in range(h):
        for c in range(w):
            var += (r - r0) ** 2 * image[r, c] / total
            cov += (r - r0) * (c - c0) * image[r, c] / total
    slant = cov / var

    def pixel(r, c):
        return image[r, c] if 0 <= r < h and 0 <= c < w else 0.0

    out = np.zeros((h, w))
    for r in range(h):
        for c in range(w):
            y, x = r + r0 - h / 2, c + c0 - w / 2 + slant * (r - h / 2)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            out[r, c] = ((1 - fy) * (1 - fx) * pixel(y0, x0) + (1 - fy) * fx * pixel(y0, x0 + 1)
                         + fy * (1 - fx) * pixel(y0 + 1, x0) + fy * fx * pixel(y0 + 1, x0 + 1))
    return out


def naive_blur(image, sigma):
    """Blur one image by an explicit 2-D sum over a Gaussian kernel truncated at 4 sigma, zeros outside."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = np.outer(taps, taps) / taps.sum() ** 2
    padded = np.pad(image.astype(np.float64), radius)
    h, w = image.shape
    out = np.zeros((h, w))
    for r in range(h):
        for c in range(w):
            out[r, c] = (padded[r:r + 2 * radius + 1, c:c + 2 * radius + 1] * kernel).sum()
    return out


def moments(image):
    rows, cols = np.indices(image.shape)
    total = image.sum()
    r0, c0 = (rows * image).sum() / total, (cols * image).sum() / total
    return r0, c0, ((rows - r0) * (cols - c0) * image).sum() / total


def test_deskew_matches_a_pixel_by_pixel_reference(images):
    x = images[:6].astype(np.float32) / 255
    np.testing.assert_allclose(Deskew().transform(x), np.stack([naive_deskew(img) for img in x]), atol=1e-5)


def test_deskew_removes_the_slant_and_centres_the_ink():
    image = np.zeros((28, 28), np.float32)
    for r in range(6, 22):  # a bar leaning right by one column every two rows, off centre
        image[r, 6 + (22 - r) // 2: 9 + (22 - r) // 2] = 1
    assert abs(moments(image)[2]) > 1
    out = Deskew().transform(image[None])[0]
    r0, c0, cov = moments(out)
    assert abs(cov) < 0.02 * abs(moments(image)[2])
    assert abs(r0 - 14) < 0.05 and abs(c0 - 14) < 0.05
    assert out.sum() == pytest.approx(image.sum(), rel=0.01)


def test_deskew_keeps_blank_images_blank(images):
    x = np.concatenate([np.zeros((1, 28, 28), np.float32), images[:2].astype(np.float32) / 255])
    out = Deskew().transform(x)
    assert not out[0].any()
    assert out[1:].any(axis=(1, 2)).all()


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7])
def test_blur_matches_an_explicit_convolution(images, sigma):
    x = images[:3].astype(np.float32) / 255
    np.testing.assert_allclose(Blur(sigma).transform(x), np.stack([naive_blur(img, sigma) for img in x]), atol=1e-6)


@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("side", [28, 7])  # more features than training rows, then fewer
def test_pca_matches_scikit_learn(images, whiten, side):
    x = images[:, ::28 // side, ::28 // side].reshape(len(images), -1).astype(np.float32) / 255
    ours = PCA(12, whiten=whiten).fit(x[:100])
    theirs = SklearnPCA(12, whiten=whiten, svd_solver="full").fit(x[:100].astype(np.float64))
    signs = np.sign((ours.components_ * theirs.components_).sum(axis=1))
    np.testing.assert_allclose(ours.components_, theirs.components_ * signs[:, None], atol=1e-6)
    np.testing.assert_allclose(ours.std_, np.sqrt(theirs.explained_variance_), rtol=1e-6)
    np.testing.assert_allclose(ours.transform(x[100:]), theirs.transform(x[100:]) * signs, atol=1e-4)


def test_pca_axes_have_a_fixed_sign_and_nest(images):
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    big, small = PCA(20).fit(x), PCA(7).fit(x)
    assert (big.components_[np.arange(20), np.abs(big.components_).argmax(axis=1)] > 0).all()
    np.testing.assert_array_equal(small.components_, big.components_[:7])
    # the same axes; the products differ in shape, so BLAS may round them differently (float32 result: ~1e-7)
    np.testing.assert_allclose(small.transform(x), big.transform(x)[:, :7], rtol=1e-5, atol=1e-6)


def test_transforms_are_fitted_on_training_images_only(images):
    train, other = images[:80], images[80:]
    transforms = Transforms(["deskew", {"blur": {"sigma": 0.8}}, {"pca": {"n_components": 10, "whiten": True}}])
    train_features = transforms.fit_transform(train)
    assert train_features.shape == (80, 10) and train_features.dtype == np.float32
    np.testing.assert_allclose(train_features.std(axis=0, ddof=1), 1, rtol=1e-4)
    expected = PCA(10, whiten=True).fit(Blur(0.8).transform(Deskew().transform(train / np.float32(255)))
                                        .reshape(80, -1))
    np.testing.assert_allclose(transforms.transform(other), expected.transform(
        Blur(0.8).transform(Deskew().transform(other / np.float32(255))).reshape(40, -1)), atol=1e-5)
    assert not np.allclose(transforms.transform(other), Transforms(transforms.spec).fit_transform(other))


def test_no_steps_gives_scaled_pixels(images):
    features = Transforms([]).fit_transform(images[:3])
    np.testing.assert_array_equal(features, images[:3].reshape(3, -1) / np.float32(255))


def test_fitted_arrays_rebuild_the_same_transforms(images):
    spec = ["deskew", {"pca": {"n_components": 5}}]
    fitted = Transforms(spec)
    fitted.fit_transform(images[:60])
    arrays = fitted.arrays()
    assert sorted(arrays) == ["1.components_", "1.mean_", "1.std_"]
    rebuilt = Transforms.from_arrays(spec, arrays)
    np.testing.assert_array_equal(rebuilt.transform(images[60:]), fitted.transform(images[60:]))
    with pytest.raises(DigitsError, match=r"do not match the spec.*needs \['1.components_'"):
        Transforms.from_arrays(spec, {"1.mean_": arrays["1.mean_"]})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("deskew", r"expected a list of steps, got 'deskew'"),
        (["sharpen"], r"step 0: unknown step 'sharpen', expected one of deskew, blur, pca"),
        ([{"blur": 1.0}], r"step 0 \(blur\): arguments must be a mapping, got 1.0"),
        ([{"blur": {"radius": 2}}], r"step 0 \(blur\): unknown arguments \['radius'\]; it takes sigma"),
        ([{"pca": {}}], r"step 0 \(pca\): missing arguments \['n_components'\]"),
        ([{"blur": {"sigma": 0}}], r"step 0 \(blur\): expected sigma > 0"),
        ([{"pca": {"n_components": 2.5}}], r"integer n_components >= 1, got 2.5"),
        ([{"pca": {"n_components": 5}}, "deskew"], r"step 0 \(pca\) must be the last step, but deskew follows"),
        ([{"pca": {"n_components": 5}, "blur": {"sigma": 1}}], r"step 0: expected a step name or a one-key mapping"),
    ],
)
def test_bad_specs_are_refused(spec, match):
    with pytest.raises(DigitsError, match=match):
        Transforms(spec)


def test_bad_input_is_refused(images):
    with pytest.raises(DigitsError, match=r"uint8 images of shape \(N, H, W\), but got float64 \(2, 784\)"):
        Transforms([]).fit_transform(np.zeros((2, 784)))
    with pytest.raises(DigitsError, match=r"step 0 \(pca\): expected n_components <= min\(samples, features\) = 4"):
        Transforms([{"pca": {"n_components": 6}}]).fit_transform(images[:4])
