"""Fingerprints of a training run (its settings and data), so that a checkpoint is resumed only by the run that made it."""

import hashlib
import json

import numpy as np


def fingerprint(settings: dict, *arrays) -> str:
    """JSON of `settings` plus, under "data", the SHA-256 of the arrays' bytes in order."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return json.dumps({**settings, "data": digest.hexdigest()})


def changed_keys(saved: str, wanted: str) -> list[str]:
    """The keys, sorted, whose values differ between two fingerprints; raises ValueError when one is not JSON."""
    saved, wanted = json.loads(saved), json.loads(wanted)
    return sorted(key for key in set(saved) | set(wanted) if saved.get(key) != wanted.get(key))
