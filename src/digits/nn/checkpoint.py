"""Training checkpoints: everything needed to continue an interrupted run to the same weights, in one ``.npz``.

A checkpoint holds the model's parameters and buffers, the optimizer's state, the
schedule's step count, the state of every random generator (the training one that
shuffles and augments, and the model's, which draws dropout masks), the epochs done
and the figures logged for them.  A ``fingerprint`` string (`digits.fingerprint`: the training
settings and a hash of the data) guards against continuing a run made with other settings.
Nothing is unpickled: arrays are read with ``allow_pickle=False``, the rest is JSON.
"""

from pathlib import Path

from digits.artifacts import check_arrays
from digits.errors import DigitsError
from digits.fingerprint import changed_keys
from digits.io import header_array, load_archive, save_archive

_HEADER = "__checkpoint__"
_FILE = "a training checkpoint (a .npz of plain arrays with a JSON header, written by train_cnn)"
_REMEDY = "delete it or set cnn.resume to false"


def save_checkpoint(path, *, model, optimizer, schedule, rng, epochs_done, history, fingerprint):
    """Write the training state after ``epochs_done`` epochs to ``path`` atomically.

    ``rng`` is the training generator; ``history`` the list of per-epoch figure dicts so far.
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    arrays.update({f"optimizer/{name}": value for name, value in optimizer.state_dict().items()})
    header = {"epochs_done": epochs_done, "fingerprint": fingerprint, "history": history,
              "schedule": schedule.state_dict() if schedule is not None else None,
              "rng": {name: generator.bit_generator.state for name, generator in _generators(model, rng).items()}}
    save_archive(path, {**arrays, _HEADER: header_array(header)}, compress=False)


def load_checkpoint(path, *, model, optimizer, schedule, rng, fingerprint):
    """Restore the state saved by ``save_checkpoint`` into the given objects; returns (epochs_done, history).

    A missing file means nothing to resume: (0, []).  A file that is not a checkpoint, or one
    made with another fingerprint, raises a DigitsError naming the file and what differs.
    """
    if not Path(path).is_file():
        return 0, []
    header, arrays = load_archive(path, _FILE, _HEADER, _REMEDY)
    try:
        changed = changed_keys(header["fingerprint"], fingerprint)
    except (KeyError, TypeError, ValueError):
        raise DigitsError(f"{path}: not {_FILE}; {_REMEDY}") from None
    if changed:
        raise DigitsError(f"{path}: made with other training settings or data ({', '.join(changed)}); {_REMEDY}")
    check_arrays(path, arrays, "training state", _REMEDY)
    try:
        _restore(arrays, header, model=model, optimizer=optimizer, schedule=schedule, rng=rng)
    except (DigitsError, KeyError, TypeError, ValueError) as err:
        raise DigitsError(f"{path}: does not fit this model and optimizer ({err}); {_REMEDY}") from None
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
