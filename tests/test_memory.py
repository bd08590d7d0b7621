"""digits.memory outside glibc (the effect under glibc: tests/nn/test_nn_train.py, page faults of an epoch)."""

import ctypes

import pytest

from digits import memory


class _OtherLibc:
    """A C library without glibc's functions, as on macOS or musl."""

    def mallopt(self, *_):
        raise AssertionError("mallopt must not be called outside glibc")


def _no_handle(name):
    """ctypes.CDLL(None) on Windows."""
    raise TypeError(f"cannot open {name!r}")


@pytest.mark.parametrize("cdll", [lambda name: _OtherLibc(), _no_handle])
def test_outside_glibc_nothing_is_changed(monkeypatch, cdll):
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    assert memory.keep_freed_memory.__wrapped__() is False

