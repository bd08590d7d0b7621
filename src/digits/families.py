"""The model families of the ensemble, by member name: where each class lives and its model file's suffix.

Every name in params.yaml's cnn_members is a numpy CNN; the other members are listed here, once, for
params (the model names a run trains), the training stages (models/<name><suffix>) and `digits predict`,
which loads a class by its name here.  A stage imports its family's module itself: dvc.yaml's deps
(tests/test_stage_deps.py) follow import statements, not the names below.
"""
from __future__ import annotations

import importlib
from typing import NamedTuple


class Family(NamedTuple):
    module: str  # e.g. "digits.knn", imported only when the class is asked for (resnet's imports torch)
    cls: str     # a class implementing digits.member's protocol
    suffix: str  # of its model file, models/<name><suffix>

    def load_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.cls)


NUMPY_CNN = Family("digits.cnn", "NumpyCNN", ".npz")
OTHERS = {"knn": Family("digits.knn", "KNNModel", ".npz"),
          "resnet": Family("digits.resnet", "ResNet", ".pt")}


def family(name: str) -> Family:
    """The family of member `name`: one of OTHERS, else a numpy CNN of cnn_members."""
    return OTHERS.get(name, NUMPY_CNN)
