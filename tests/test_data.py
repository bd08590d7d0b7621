"""CSV validation: good files parse, each kind of bad file is refused with a line naming row, column and value."""
import numpy as np
import pytest

from digits.data import PIXELS, parse_digits, parse_labels
from digits.errors import DigitsError


def csv_bytes(rows, labelled=True, header=None):
    header = header if header is not None else (["label"] if labelled else []) + PIXELS
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def row(label=3, fill=0):
    return [label] + [fill] * 784


def test_train_csv_parses_to_uint8_images_and_labels():
    pixels = np.arange(784) % 256
    raw = csv_bytes([[7, *pixels], row(0)])
    x, y = parse_digits(raw, "train.csv", labelled=True)
    assert x.shape == (2, 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [7, 0] and y.dtype == np.uint8
    assert x[0, 0, 5] == 5 and x[0, 27, 27] == 783 % 256


def test_test_csv_has_no_labels():
    x, y = parse_digits(csv_bytes([[1] * 784], labelled=False), "test.csv", labelled=False)
    assert x.shape == (1, 28, 28) and y is None


def test_bom_and_windows_line_endings_are_accepted():
    raw = b"\xef\xbb\xbf" + csv_bytes([row(5), row(6)]).replace(b"\n", b"\r\n")
    _, y = parse_digits(raw, "train.csv", labelled=True)
    assert y.tolist() == [5, 6]


@pytest.mark.parametrize("raw, fragments", [
    (b"", ["empty"]),
    (csv_bytes([]), ["no data rows"]),
    (csv_bytes([row()], header=["label"] + PIXELS[:-1] + ["pixelX"]), ["header column 785", "'pixelX'", "'pixel783'"]),
    (csv_bytes([row()[:-1]], header=["label"] + PIXELS[:-1]), ["784 columns", "expected 785"]),
    (csv_bytes([row(), row() + [0]]), ["line 3", "785 fields"]),
    (csv_bytes([row(), row()[:-1] + ["abc"]]), ["row 2", "'pixel783'", "'abc'", "integer"]),
    (csv_bytes([row(), row()[:-1] + [""]]), ["row 2", "'pixel783'", "missing value"]),
    (csv_bytes([row()[:10] + [1.5] + row()[11:]]), ["row 1", "'pixel9'", "'1.5'"]),
    (csv_bytes([row(), row()[:5] + ["1e3"] + row()[6:]]), ["row 2", "'pixel4'", "'1e3'", "integer"]),
    (csv_bytes([row()[:1] + [10 ** 30] + row()[2:]]), ["row 1", "'pixel0'", f"found {10 ** 30}", "0-255"]),
    (csv_bytes([["label", *PIXELS], row()]), ["row 1", "'label'", "found 'label'", "integer"]),
    (csv_bytes([row(), row() + [0] * 200_000]), ["785 fields in line 3, saw 200785"]),
    (csv_bytes([row(), row()[:100] + [256] + row()[101:]]), ["row 2", "'pixel99'", "found 256", "0-255"]),
    (csv_bytes([row(fill=-1)]), ["row 1", "'pixel0'", "found -1"]),
    (csv_bytes([row(label=10)]), ["row 1", "'label'", "found 10", "0-9"]),
    (b"\x1f\x8b\x08\x00" + b"\x00" * 20, ["gzip", "extract"]),
    (b"PK\x03\x04" + b"\x00" * 20, ["zip"]),
    (b"label,pixel0\n\xff\xfe,1\n", ["not UTF-8"]),
])
def test_bad_train_csv_is_refused_with_a_precise_message(raw, fragments):
    with pytest.raises(DigitsError) as err:
        parse_digits(raw, "train.csv", labelled=True)
    message = str(err.value)
    assert message.startswith("train.csv: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_test_csv_with_a_label_column_is_refused():
    with pytest.raises(DigitsError, match="785 columns, expected 784"):
        parse_digits(csv_bytes([row()]), "test.csv", labelled=False)


def labels_csv(pairs, header="ImageId,Label"):
    return (header + "\n" + "".join(f"{i},{y}\n" for i, y in pairs)).encode()


def test_labels_are_ordered_by_image_id():
    assert parse_labels(labels_csv([(2, 5), (1, 4), (3, 9)]), "sub.csv", n_rows=3).tolist() == [4, 5, 9]


@pytest.mark.parametrize("raw, n, fragment", [
    (labels_csv([(1, 1), (2, 2)], header="Id,Label"), 2, "'Id', expected 'ImageId'"),
    (labels_csv([(1, 1), (2, 2)]), 3, "found 2 rows, expected 3"),
    (labels_csv([(1, 1), (1, 2)]), 2, "row 2, column 'ImageId': found 1 again"),
    (labels_csv([(1, 1), (3, 2)]), 2, "row 2, column 'ImageId': found 3, expected an id 1-2"),
    (labels_csv([(1, 1), (2, 12)]), 2, "row 2, column 'Label': found 12, expected a digit 0-9"),
])
def test_bad_submission_is_refused(raw, n, fragment):
    with pytest.raises(DigitsError, match=fragment):
        parse_labels(raw, "sub.csv", n_rows=n)
