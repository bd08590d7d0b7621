"""Fixtures of the digits.nn tests."""

import pytest
from threadpoolctl import threadpool_info

from digits.nn.fast import parallel


@pytest.fixture
def blas_threads():
    """A function giving the thread counts of the BLAS libraries that digits.nn limits: those loaded
    when it was imported (numpy's and scipy's; not torch's, which other tests load later)."""
    limited = {lib.filepath for lib in parallel._BLAS.lib_controllers if lib.user_api == "blas"}

    def threads():
        return sorted(lib["num_threads"] for lib in threadpool_info() if lib["filepath"] in limited)

    return threads
