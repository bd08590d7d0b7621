"""Image transforms for the k-NN, declared in params.yaml and fitted on the training images only.

A spec is a list of steps such as ``["deskew", {"blur": {"sigma": 1.0}}, {"pca": {"n_components": 50}}]``.
`Transforms` scales uint8 images (N, H, W) to float32 in [0, 1], applies the image steps (deskew,
blur) in order, flattens, and applies pca if present: features float32 (N, D).
"""

import inspect

import numpy as np
from scipy import ndimage

from digits.errors import DigitsError, SettingError
from digits.progress import progress
from digits.spec import check_arguments, parse_item


class Deskew:
    """Straighten slanted digits by their image moments (bilinear interpolation, zeros outside the frame).

    With centre of mass (r0, c0), row variance v and row-column covariance c of the ink, output
    pixel (r, q) samples the input at (r + r0 - H/2, q + c0 - W/2 + (c / v) (r - H/2)): a shear that
    leaves the ink with no row-column covariance, and a shift of its centre of mass to (H/2, W/2).
    A blank image stays blank.
    """

    def fit(self, x):
        return self

    def transform(self, x):
        """Images float32 (N, H, W) -> deskewed images float32 (N, H, W)."""
        n, h, w = x.shape
        rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
        row_mass, col_mass = x.sum(axis=2, dtype=np.float64), x.sum(axis=1, dtype=np.float64)
        mass = row_mass.sum(axis=1)
        ink = mass > 0
        mass[~ink] = 1.0
        r0, c0 = row_mass @ rows / mass, col_mass @ cols / mass
        var = row_mass @ rows**2 / mass - r0**2
        cov = np.einsum("nij,i,j->n", x, rows, cols, dtype=np.float64) / mass - r0 * c0
        slant = cov / np.where(var > 0, var, np.inf)
        out = np.zeros_like(x)
        for i in progress(np.flatnonzero(ink), "deskew", unit="image"):
            offset = (r0[i] - h / 2, c0[i] - w / 2 - slant[i] * h / 2)
            ndimage.affine_transform(x[i], [[1.0, 0.0], [slant[i], 1.0]], offset=offset, output=out[i],
                                     order=1, mode="grid-constant")
        return out


class Blur:
    """Gaussian blur with standard deviation `sigma` pixels (scipy's gaussian_filter, zeros outside the frame)."""

    def __init__(self, sigma):
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
            raise SettingError(f"expected sigma > 0 (pixels), got {sigma!r}")
        self.sigma = float(sigma)

    def fit(self, x):
        return self

    def transform(self, x):
        """Images float32 (N, H, W) -> blurred images float32 (N, H, W)."""
        return ndimage.gaussian_filter(x, sigma=(0, self.sigma, self.sigma), mode="constant")


class PCA:
    """Projection of rows on the first `n_components` principal axes of the training rows.

    The axes and variances come from numpy's SVD: of the centred training rows when they are
    fewer than the features, else of their D x D scatter matrix (the same axes, and for many rows
    a fraction of the cost).
    Each axis's sign makes its largest-magnitude loading positive. With `whiten`, each component
    is divided by its standard deviation on the training rows.
    """

    fitted = ("mean_", "components_", "std_")

    def __init__(self, n_components, whiten=False):
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise SettingError(f"expected an integer n_components >= 1, got {n_components!r}")
        if not isinstance(whiten, bool):
            raise SettingError(f"expected whiten true or false, got {whiten!r}")
        self.n_components = n_components
        self.whiten = whiten

    def fit(self, x):
        """Fit on rows x (N, D); needs n_components <= min(N, D)."""
        if self.n_components > min(x.shape):
            raise SettingError(f"expected n_components <= min(samples, features) = {min(x.shape)},"
                               f" got {self.n_components}")
        self.mean_ = x.mean(axis=0, dtype=np.float64)
        centred = x - self.mean_
        if len(x) < x.shape[1]:
            _, singular, axes = np.linalg.svd(centred, full_matrices=False)
            variance = singular**2
        else:
            _, variance, axes = np.linalg.svd(centred.T @ centred, hermitian=True)
        axes = axes[:self.n_components]
        signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
        self.components_ = axes * signs[:, None]
        self.std_ = np.sqrt(variance[:self.n_components] / max(len(x) - 1, 1))
        return self

    def transform(self, x):
        """Rows (N, D) -> components float32 (N, n_components)."""
        z = (x - self.mean_) @ self.components_.T
        if self.whiten:
            z /= np.where(self.std_ > 0, self.std_, 1.0)
        return z.astype(np.float32)


STEPS = {"deskew": Deskew, "blur": Blur, "pca": PCA}
_IMAGE_STEPS = ("deskew", "blur")


class Transforms:
    """The steps of a spec, fitted in order on training images: uint8 images (N, H, W) -> float32 features (N, D)."""

    def __init__(self, spec):
        if not isinstance(spec, list):
            raise DigitsError(f"knn.transforms: expected a list of steps, got {spec!r}")
        self.spec = spec
        try:
            parsed = [parse_item(index, item, STEPS, "step") for index, item in enumerate(spec)]
            self.names = [name for name, _ in parsed]
            pca = [index for index, name in enumerate(self.names) if name == "pca"]
            if pca and pca[0] != len(spec) - 1:
                raise DigitsError(f"step {pca[0]} (pca) must be the last step, but {self.names[pca[0] + 1]} follows it")
            self.steps = [_make(index, name, args) for index, (name, args) in enumerate(parsed)]
        except DigitsError as err:
            raise DigitsError(f"knn.transforms: {err}") from None

    def fit_transform(self, images):
        """Fit each step on the training images (N, H, W) as the steps before leave them; their features (N, D)."""
        return self._run(images, fit=True)

    def transform(self, images):
        """uint8 images (N, H, W) -> features float32 (N, D)."""
        return self._run(images, fit=False)

    def arrays(self):
        """The fitted arrays of every step, keyed "<step index>.<name>"."""
        return {key: getattr(self.steps[index], name) for key, index, name in self._array_keys()}

    @classmethod
    def from_arrays(cls, spec, arrays):
        """Fitted Transforms rebuilt from a spec and the arrays that `arrays()` gave."""
        transforms = cls(spec)
        keys = transforms._array_keys()
        if sorted(arrays) != sorted(key for key, _, _ in keys):
            raise DigitsError(f"transform arrays {sorted(arrays)} do not match the spec {spec!r},"
                              f" which needs {sorted(key for key, _, _ in keys)}")
        for key, index, name in keys:
            setattr(transforms.steps[index], name, arrays[key])
        return transforms

    def _array_keys(self):
        return [(f"{index}.{name}", index, name) for index, step in enumerate(self.steps)
                for name in getattr(step, "fitted", ())]

    def _run(self, images, fit):
        images = np.asarray(images)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DigitsError(f"Expected uint8 images of shape (N, H, W), but got {images.dtype} {images.shape}")
        x = images.astype(np.float32) / 255.0
        for index, (name, step) in enumerate(zip(self.names, self.steps)):
            if name not in _IMAGE_STEPS:
                x = x.reshape(len(x), -1)
            try:
                x = (step.fit(x) if fit else step).transform(x)
            except SettingError as err:
                raise DigitsError(f"knn.transforms: step {index} ({name}): {err}") from None
        return x.reshape(len(x), -1)


def _make(index, name, args):
    """The step object for spec item `index`, its arguments checked against the step's signature."""
    parameters = inspect.signature(STEPS[name]).parameters
    required = [arg for arg, p in parameters.items() if p.default is inspect.Parameter.empty]
    check_arguments(index, name, args, list(parameters), required, "step")
    try:
        return STEPS[name](**args)
    except SettingError as err:
        raise DigitsError(f"step {index} ({name}): {err}") from None
