"""Atomic writes: a failure inside the block leaves neither a partial file nor a temporary one."""
import numpy as np
import pytest

from digits.errors import DigitsError
from digits.io import atomic_path, load_npz, save_npz, write_json


def test_failed_write_leaves_the_old_file_untouched(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_npz_round_trip_without_pickle(tmp_path):
    save_npz(tmp_path / "d" / "a.npz", x=np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert load_npz(tmp_path / "d" / "a.npz")["x"].tolist() == [[0, 1, 2], [3, 4, 5]]
    np.save(tmp_path / "evil.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(DigitsError, match="evil.npy: not a .npz of plain arrays.*nothing pickled") as caught:
        load_npz(tmp_path / "evil.npy")
    assert "allow_pickle" not in str(caught.value)  # numpy's advice to load it unsafely is not passed on
