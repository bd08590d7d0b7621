"""Fuzzing the CSV readers: any bytes are either accepted or refused with the project's own error."""
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digits.data import PIXELS, parse_digits, parse_labels
from digits.errors import DigitsError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ",".join(["label", *PIXELS]).encode()
cells = st.one_of(st.integers(-300, 600).map(str), st.sampled_from(["", "nan", "1.5", "x", '"', "1e3", " 7", "\t"]),
                  st.text(max_size=4))


def accepts_or_refuses(call):
    try:
        return call()
    except DigitsError as e:
        assert "\n" not in str(e)
        return None


@FUZZ
@given(st.binary(max_size=300))
@example(b"\xef")  # the first byte of a UTF-8 BOM alone: pandas found no columns and raised its own error
def test_arbitrary_bytes(raw):
    accepts_or_refuses(lambda: parse_digits(raw, "train.csv", labelled=True))
    accepts_or_refuses(lambda: parse_labels(raw, "sub.csv"))


def odd_row(replaced: dict[int, str], length: int) -> list[str]:
    """A row of `length` cells, "0" (a valid label or pixel) but for the odd cells `replaced` puts at their indices."""
    row = ["0"] * length
    for index, cell in replaced.items():
        row[index % length] = cell
    return row


# Rows 5 cells short to 5 too long with up to 8 odd cells each: drawing whole 785-cell rows made hypothesis slow.
odd_rows = st.builds(odd_row, st.dictionaries(st.integers(0, 789), cells, max_size=8), st.integers(780, 790))


@FUZZ
@given(st.lists(odd_rows, min_size=1, max_size=3))
def test_rows_of_odd_cells_under_a_good_header(rows):
    raw = HEADER + b"\n" + b"\n".join(",".join(r).encode("utf-8", "surrogatepass") for r in rows) + b"\n"
    result = accepts_or_refuses(lambda: parse_digits(raw, "train.csv", labelled=True))
    if result is not None:
        x, y = result
        assert x.dtype == np.uint8 and y.max() <= 9


@FUZZ
@given(st.lists(st.tuples(st.integers(-2, 5), st.one_of(st.integers(-1, 11).map(str), cells)), max_size=6))
def test_submissions(pairs):
    raw = ("ImageId,Label\n" + "".join(f"{i},{label}\n" for i, label in pairs)).encode("utf-8", "surrogatepass")
    labels = accepts_or_refuses(lambda: parse_labels(raw, "sub.csv", n_rows=len(pairs)))
    if labels is not None:
        assert sorted(i for i, _ in pairs) == list(range(1, len(pairs) + 1))
