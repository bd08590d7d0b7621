"""MNIST-style preprocessing of image files: any size, polarity, colour or transparency gives the same 28x28 digit."""
import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from digits.errors import DigitsError
from digits.preprocess import load_digit, stroke_width, to_mnist


def drawn_seven(pen: int, size=(300, 400), ink="black", paper="white", mode="RGB") -> Image.Image:
    """A 7 drawn with a pen `pen` pixels wide, off centre on a canvas of `size`."""
    img = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(img)
    draw.line((60, 80, 200, 80), fill=ink, width=pen)
    draw.line((200, 80, 110, 330), fill=ink, width=pen)
    return img


def bbox(image):
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_a_drawing_becomes_a_centred_20_pixel_digit_in_28x28(tmp_path):
    drawn_seven(pen=24).save(tmp_path / "seven.png")
    out = load_digit(tmp_path / "seven.png")
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # light ink on black, margins empty
    assert max(bbox(out > 0)) in (20, 21)  # the longer side fits the 20-pixel box (Lanczos may spill one pixel)
    assert np.allclose(ndimage.center_of_mass(out.astype(float)), (14, 14), atol=0.6)


def similarity(a, b):
    """Correlation of two images after a slight blur, so that a one-pixel shift of a thin stroke counts little."""
    a, b = (ndimage.gaussian_filter(np.asarray(v, float), 1.0).ravel() for v in (a, b))
    return np.corrcoef(a, b)[0, 1]


def test_polarity_colour_transparency_and_format_do_not_matter(tmp_path):
    reference = load_digit(_save(drawn_seven(pen=24), tmp_path / "ref.png"))
    variants = {
        "inverted.png": drawn_seven(pen=24, ink="white", paper="black"),
        "grey.png": drawn_seven(pen=24, ink=40, paper=220, mode="L"),
        "colour.png": drawn_seven(pen=24, ink=(20, 40, 160), paper=(250, 240, 200)),
        "transparent.png": drawn_seven(pen=24, ink=(0, 0, 0, 255), paper=(0, 0, 0, 0), mode="RGBA"),
        "photo.jpg": drawn_seven(pen=24),
    }
    for name, img in variants.items():
        out = load_digit(_save(img, tmp_path / name))
        assert np.abs(out.astype(int) - reference).mean() < 0.5, name


def test_size_and_pen_width_change_little(tmp_path):
    reference = load_digit(_save(drawn_seven(pen=24), tmp_path / "ref.png"))
    small = load_digit(_save(drawn_seven(pen=24).resize((75, 100), Image.Resampling.LANCZOS), tmp_path / "small.png"))
    thin = load_digit(_save(drawn_seven(pen=2, size=(900, 1200)), tmp_path / "thin.png"))
    assert similarity(small, reference) > 0.9
    assert similarity(thin, reference) > 0.85
    for out in (reference, small, thin):  # a 2-pixel pen on a 1200-pixel canvas is thickened like the others
        assert 1.5 <= stroke_width(out / 255) <= 3.0


def test_a_competition_image_is_left_nearly_as_it_was():
    digit = np.zeros((28, 28), np.float32)  # a 20-pixel-tall "1" with a foot, placed like MNIST's digits
    digit[4:24, 13:16] = 1.0
    digit[22:24, 10:19] = 1.0
    digit = ndimage.shift(digit, 14 - np.array(ndimage.center_of_mass(digit)), order=1)
    noisy = np.clip(digit + np.random.default_rng(0).uniform(0, 0.05, digit.shape), 0, 1)  # a little sensor noise
    assert similarity(to_mnist(noisy), digit) > 0.97


def test_stroke_width_of_a_bar():
    bar = np.zeros((60, 60))
    bar[10:50, 20:26] = 1.0
    assert stroke_width(bar) == pytest.approx(6, rel=0.15)


def _save(img, path):
    img.save(path)
    return path


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty, expected a PNG or JPEG image of a digit"),
    (b"label,pixel0\n1,2\n", "not an image file Pillow can read, expected a PNG or JPEG image of a digit"),
])
def test_a_file_that_is_not_an_image_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "digit.png"
    path.write_bytes(content)
    with pytest.raises(DigitsError, match=message) as err:
        load_digit(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_truncated_image_is_refused(tmp_path):
    path = _save(drawn_seven(pen=24), tmp_path / "whole.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DigitsError, match=r"cut.png: unreadable image \(.*\), expected a complete PNG or JPEG"):
        load_digit(cut)


def test_a_missing_file_and_a_blank_image_are_refused(tmp_path):
    with pytest.raises(DigitsError, match="nothing.png: no such file"):
        load_digit(tmp_path / "nothing.png")
    blank = _save(Image.new("L", (50, 50), 200), tmp_path / "blank.png")
    with pytest.raises(DigitsError, match=r"blank.png: no digit found \(the strongest ink differs from the background "
                                          r"by 0.00\)"):
        load_digit(blank)
