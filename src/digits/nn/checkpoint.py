"""Training checkpoints: everything needed to continue an interrupted run to the same weights, in one ``.npz``.

A checkpoint holds the model's parameters and buffers, the optimizer's state, the
schedule's step count, the state of every random generator (the training one that
shuffles and augments, and the model's, which draws dropout masks), the epochs done
and the figures logged for them.  A ``fingerprint`` string (`digits.fingerprint`: the training
settings and a hash of the data) guards against continuing a run made with other settings.
Nothing is unpickled: arrays are read with ``allow_pickle=False``, the rest is JSON.
"""

import json
import zipfile

import numpy as np

from digits.artifacts import check_arrays
from digits.errors import DigitsError
from digits.fingerprint import changed_keys
from digits.io import atomic_path

_HEADER = "__checkpoint__"


def save_checkpoint(path, *, model, optimizer, schedule, rng, epochs_done, history, fingerprint):
    """Write the training state after ``epochs_done`` epochs to ``path`` atomically.

    ``rng`` is the training generator; ``history`` the list of per-epoch figure dicts so far.
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    header = {"epochs_done": epochs_done, "fingerprint": fingerprint, "history": history,
              "schedule": schedule.state_dict() if schedule is not None else None,
              "rng": {name: generator.bit_generator.state for name, generator in _generators(model, rng).items()}}
    arrays[_HEADER] = np.array(json.dumps(header))
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)


def load_checkpoint(path, *, model, optimizer, schedule, rng, fingerprint):
    """Restore the state saved by ``save_checkpoint`` into the given objects; returns (epochs_done, history).

    A missing file means nothing to resume: (0, []).  A file that is not a checkpoint, or one
    made with another fingerprint, raises a DigitsError naming the file and what differs.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        header = json.loads(str(arrays.pop(_HEADER)))
        changed = changed_keys(header["fingerprint"], fingerprint)
    except FileNotFoundError:
        return 0, []
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile):
        raise DigitsError(f"{path}: not a training checkpoint (a .npz of plain arrays with a JSON header, "
                          "written by train_cnn); delete it or set cnn.resume to false") from None
    if changed:
        raise DigitsError(f"{path}: made with other training settings or data ({', '.join(changed)}); "
                          "delete it or set cnn.resume to false")
    check_arrays(path, arrays, "training state", "delete it or set cnn.resume to false")
    try:
        _restore(arrays, header, model=model, optimizer=optimizer, schedule=schedule, rng=rng)
    except (DigitsError, KeyError, TypeError, ValueError) as err:
        raise DigitsError(f"{path}: does not fit this model and optimizer ({err}); "
                          "delete it or set cnn.resume to false") from None
    return header["epochs_done"], header["history"]


def _restore(arrays, header, *, model, optimizer, schedule, rng):
    """Copy the saved arrays, optimizer and schedule state and generator states into the live objects."""
    model.load_state_dict(_under(arrays, "model/"))
    optimizer.load_state_dict(_under(arrays, "optimizer/"))
    if schedule is not None:
        schedule.load_state_dict(header["schedule"])
    for name, generator in _generators(model, rng).items():
        generator.bit_generator.state = header["rng"][name]


def _under(arrays, prefix):
    """The arrays whose names start with ``prefix``, under their names less it."""
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


def _generators(model, rng):
    """{"train": rng, "layer<i>": generator of layer i} for every layer that draws random numbers."""
    found = {"train": rng}
    found.update({f"layer{index}": layer.rng for index, layer in enumerate(model.layers) if hasattr(layer, "rng")})
    return found
