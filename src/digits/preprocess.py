"""MNIST-style preprocessing: a photo or drawing of one digit -> a 28x28 uint8 image like the training data.

The steps MNIST used: grey levels, light ink on a black background, crop to the ink,
scale the longer side to 20 pixels keeping the aspect ratio, and place the result in a
28x28 field so that its centre of mass is at pixel (14, 14). One step MNIST did not need:
strokes that would end up thinner than 1.3 pixels (a fine pen on a large canvas) are thickened
to the competition's typical 2.3 pixels, which the models have learnt to expect.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from digits.errors import DigitsError

SIDE = 28  # output size (pixels)
BOX = 20  # the digit's longer side after scaling (pixels)
CENTRE = 14.0  # where the centre of mass lands (row and column), as in the competition's images
MIN_CONTRAST = 0.1  # ink must differ from the background by this much (fraction of full scale)
NOISE = 0.2  # after scaling the ink to [0, 1], weaker pixels count as background
WORK = 80  # the digit's longer side (pixels) while its strokes are measured and thickened
MIN_STROKE = 1.3  # strokes thinner than this (pixels, at the 20-pixel size; 1% of the competition's digits) ...
STROKE = 2.3  # ... are thickened to this width, the median stroke of the competition's digits


def read_grey(path: str | Path) -> np.ndarray:
    """Grey levels float32 (H, W) in [0, 1] (0 black) of an image file of any format Pillow reads.

    Colour becomes luminance; transparent parts are laid on white, as a viewer shows them;
    a camera's EXIF orientation is applied.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DigitsError(f"{path}: the file is empty, expected a PNG or JPEG image of a digit")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.has_transparency_data:
                img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DigitsError(f"{path}: no such file, expected a PNG or JPEG image of a digit") from None
    except IsADirectoryError:
        raise DigitsError(f"{path}: is a folder, expected a PNG or JPEG image of a digit") from None
    except UnidentifiedImageError:
        raise DigitsError(f"{path}: not an image file Pillow can read, expected a PNG or JPEG image of a digit") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DigitsError(f"{path}: unreadable image ({e}), expected a complete PNG or JPEG image of a digit") from None


def to_mnist(grey: np.ndarray, name: str = "image") -> np.ndarray:
    """Grey levels (H, W) in [0, 1], either polarity -> uint8 (28, 28), light ink on black, centred by mass.

    The background level is the median of the outermost pixels: a light border means dark
    ink, which is inverted. `name` is used in the error raised for an image with no ink.
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = grey - background if background < 0.5 else background - grey
    ink = np.clip(ink, 0.0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise DigitsError(f"{name}: no digit found (the strongest ink differs from the background by {peak:.2f}), "
                          f"expected a digit that stands out by at least {MIN_CONTRAST}")
    ink /= peak
    ink[ink < NOISE] = 0.0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    digit = _fit(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], WORK)
    width = stroke_width(digit)
    if width < MIN_STROKE * WORK / BOX:  # a thin pen on a large canvas: thicken to MNIST's stroke
        r = int(round((STROKE * WORK / BOX - width) / 2))
        disk = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r
        digit = ndimage.grey_dilation(np.pad(digit, r), footprint=disk)
    small = _fit(digit, BOX)
    small *= 255.0
    # Paste into a canvas with a BOX margin so that no shift can fall off the edge, then cut out the field.
    canvas = np.zeros((SIDE + 2 * BOX,) * 2, dtype=np.float32)
    top, left = (int(round(CENTRE - c)) + BOX for c in ndimage.center_of_mass(small))
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.rint(canvas[BOX:BOX + SIDE, BOX:BOX + SIDE]).astype(np.uint8)


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    """float32 (H, W) >= 0 resized so that its longer side is `side` pixels, then scaled to a maximum of 1.

    Bilinear (antialiased when shrinking, like MNIST's own scaling): a non-negative kernel, so
    no ringing around the strokes, as Lanczos would leave.
    """
    scale = side / max(image.shape)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))  # PIL's (width, height)
    out = np.asarray(Image.fromarray(np.ascontiguousarray(image, np.float32)).resize(size, Image.Resampling.BILINEAR))
    return out / out.max()


def stroke_width(image: np.ndarray) -> float:
    """Mean stroke width (pixels) of the ink in `image` (H, W) in [0, 1]: 2 x area / boundary of the pixels >= 0.5.

    A stroke of width w and length L has area wL and about 2L boundary pixels.
    """
    mask = image >= 0.5
    boundary = np.count_nonzero(mask & ~ndimage.binary_erosion(mask))
    return 2.0 * np.count_nonzero(mask) / max(boundary, 1)


def load_digit(path: str | Path) -> np.ndarray:
    """An image file of one handwritten digit -> uint8 (28, 28) as the models saw in training."""
    return to_mnist(read_grey(path), str(path))
