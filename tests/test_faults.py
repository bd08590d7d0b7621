"""Faults from outside a stage: params changed by another run, leftovers of a hard kill, folders that cannot be
written, bad files between stages, library advice to load files unsafely, and provenance that is true."""
import json
import os
import pickle
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from digits import io, knn, nn, provenance, resnet
from digits.artifacts import check_probabilities
from digits.errors import DigitsError
from digits.io import save_npz
from digits.params import OTHER_MODELS
from digits.sources import fetch
from digits.stages import download, evaluate, guard, split, submit, train_cnn, train_knn, train_resnet
from digits.stages.common import save_predictions

ROOT = Path(__file__).resolve().parents[1]
TINY_CNN = {"epochs": 2, "batch_size": 16, "schedule": "cosine", "degrees": 0, "translate": 0, "scale": 0,
            "layers": ["flatten", {"linear": {"out_features": 10}}]}


def write_params(folder: Path, **sections) -> dict:
    """The project's params.yaml with `sections` merged into its sections, written to `folder`."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def temporaries(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*.tmp")]


# 1. another run changes params.yaml while a stage trains

@pytest.mark.parametrize("key, value, refused", [("seed", 1, True), ("n_neighbors", 3, False)],
                         ids=["own params", "another stage's params"])
def test_a_params_change_during_training_refuses_every_output(workdir, monkeypatch, capsys, key, value, refused):
    params = write_params(workdir, cnn=TINY_CNN)
    real = nn.train_epoch

    def train_epoch_then_edit(*args, **kwargs):  # as `dvc exp run -S ...` in the same workspace would
        section = "cnn" if key == "seed" else "knn"
        params[section][key] = value
        (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return real(*args, **kwargs)

    monkeypatch.setattr(nn, "train_epoch", train_epoch_then_edit)
    if not refused:
        train_cnn.main()
        assert (workdir / "models" / "cnn.npz").is_file()
        return
    with pytest.raises(SystemExit) as exit_:
        train_cnn.main()
    assert exit_.value.code == 1
    line = error_line(capsys)
    assert line.startswith("train_cnn: error: params.yaml: cnn changed while train_cnn ran")
    assert "checkpoints/cnn.npz was not written" in line and "--queue" in line
    for output in ("models/cnn.npz", "predictions/cnn.npz", "metrics/cnn.json", "metrics/time/train_cnn.json"):
        assert not (workdir / output).exists()
    assert temporaries(workdir) == []


def test_each_stage_declares_the_params_and_outputs_of_its_dvc_yaml_stage():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    modules = {"download": download, "split": split, "train_knn": train_knn,
               "train_resnet": train_resnet, "evaluate": evaluate, "submit": submit}
    mains = {name: module.main for name, module in modules.items()}
    mains["train_cnn"] = train_cnn.member_stage("cnn")  # a foreach stage: its member cnn
    stages["train_cnn"] = yaml.safe_load(yaml.safe_dump(stages["train_cnn"]["do"]).replace("${key}", "cnn"))
    assert set(stages) == {*mains, "check"}  # check writes one constant file, whole, and keeps no timing
    for name, main in mains.items():
        spec = stages[name]
        timing = "train_cnn" if name == "train_cnn" else name
        assert list(main.params_keys) == spec["params"], name
        declared = {out.rstrip("/") for out in main.outputs} | {f"metrics/time/{timing}.json"}
        listed = {next(iter(o)) if isinstance(o, dict) else o
                  for kind in ("outs", "metrics", "plots") for o in spec.get(kind, [])}
        assert listed <= declared, f"{name}: {sorted(listed - declared)} not declared"


# 3. temporary files left by a hard kill

def test_a_stage_removes_the_leftover_temporaries_of_its_own_outputs_only(workdir, capsys):
    write_params(workdir, cnn=TINY_CNN)
    own = ["models/.cnn.npz.k3x_9a0b.tmp", "checkpoints/.cnn.npz.abcdefgh.tmp",
           "dvclive/cnn/plots/metrics/.lr.tsv.0a1b2c3d.tmp", "metrics/time/.train_cnn.json.zzzzzzzz.tmp"]
    others = ["models/.knn.npz.k3x_9a0b.tmp", "models/.cnn.npz.notes.tmp", "predictions/.resnet.npz.abcdefgh.tmp"]
    for rel in own + others:
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_bytes(b"half")
    train_cnn.main()
    assert sorted(temporaries(workdir)) == sorted(others)
    assert "train_cnn: removed 4 temporary file(s) left by an interrupted run" in capsys.readouterr().out


def assert_interrupted_cleanly(workdir, capsys):
    """train_cnn's main() ends with exit 130, the one 'interrupted' line and no temporary file."""
    with pytest.raises(SystemExit) as stopped:
        train_cnn.main()
    assert stopped.value.code == 130
    assert capsys.readouterr().err.startswith("train_cnn: interrupted; no output was left half-written")
    assert temporaries(workdir) == []


def test_an_interrupt_that_lands_inside_a_writes_setup_leaves_no_temporary(workdir, monkeypatch, capsys):
    write_params(workdir, cnn=TINY_CNN)

    unfinished = []  # held to the end, as the exiting stage's traceback holds it: its `finally` never runs

    def interrupted_while_entering(path, **state):  # SIGTERM right after the temporary file was made,
        unfinished.append(io.atomic_path(path))  # before `with` could arm the exit that removes it
        unfinished[-1].__enter__()
        raise KeyboardInterrupt

    monkeypatch.setattr(nn, "save_checkpoint", interrupted_while_entering)
    assert_interrupted_cleanly(workdir, capsys)


def test_a_second_signal_while_the_first_unwinds_still_ends_with_the_interrupted_line(workdir, monkeypatch, capsys):
    write_params(workdir, cnn=TINY_CNN)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def interrupted(path, **state):
        os.kill(os.getpid(), signal.SIGTERM)

    def the_second_one_lands_in_the_cleanup():  # dvc killed: its SIGTERM, then the parent-death one
        os.kill(os.getpid(), signal.SIGTERM)
        return False

    monkeypatch.setattr(nn, "save_checkpoint", interrupted)
    monkeypatch.setattr(guard, "orphaned", the_second_one_lands_in_the_cleanup)
    assert_interrupted_cleanly(workdir, capsys)
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers  # as the stage found them


# 4. folders that cannot be written, a disk that fills up

def run_stage(stage: str, folder: Path, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """`python -m digits.stages.<stage>` in `folder`, with files limited to `file_size_limit` bytes
    (as on a full disk: writes past it fail with EFBIG)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", f"digits.stages.{stage}"], cwd=folder, env=env, text=True,
                          capture_output=True, timeout=300, preexec_fn=limit if file_size_limit is not None else None)


def test_an_output_folder_that_cannot_be_written_stops_the_stage_before_training(workdir):
    write_params(workdir, cnn=TINY_CNN)
    result = run_stage("train_cnn", workdir, file_size_limit=0)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (  # after joblib's warning that it cannot make a semaphore
        "train_cnn: error: models/: cannot write there (File too large); make room on the disk or make . writable, "
        "then rerun (found before any work was done)")
    assert not (workdir / "dvclive").exists() and temporaries(workdir) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_named_with_the_os_error(workdir):
    write_params(workdir, cnn=TINY_CNN)
    (workdir / "predictions").mkdir()
    (workdir / "predictions").chmod(0o555)
    try:
        result = run_stage("train_cnn", workdir)
    finally:
        (workdir / "predictions").chmod(0o755)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("train_cnn: error: predictions/: cannot write there (Permission denied)")


def test_a_disk_filling_up_during_the_run_ends_with_one_line_and_nothing_half_written(workdir):
    write_params(workdir, cnn=TINY_CNN)
    result = run_stage("train_cnn", workdir, file_size_limit=16_384)  # the probe passes, the first checkpoint not
    assert result.returncode == 1
    assert result.stderr.strip() == ("train_cnn: error: checkpoints/cnn.npz: cannot write (File too large); make "
                                     "room on the disk or make checkpoints writable, then rerun")
    assert not (workdir / "models" / "cnn.npz").exists() and temporaries(workdir) == []


# 4. bad files between stages

def probabilities(n: int, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).random((n, 10)).astype(np.float32) + 0.01
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("spoil, problem", [
    (lambda p: np.where(np.arange(p.size).reshape(p.shape) == 7, np.nan, p), "'val' is 1 rows with NaN or infinite"),
    (lambda p: p * -5, "'val' is values from -1.428 to -0.01557, outside [0, 1]"),
    (lambda p: p * 0.5, "'val' is rows summing to 0.5..0.5 instead of 1"),
    (lambda p: p.astype(np.float64), "'val' is float64 of shape (24, 10)"),
    (lambda p: p[:, :9], "'val' is float32 of shape (24, 9)"),
], ids=["NaN", "times -5", "half", "float64", "9 classes"])
def test_evaluate_and_submit_refuse_bad_probabilities_naming_the_file(workdir, capsys, spoil, problem):
    shutil.copy(ROOT / "dvc.yaml", workdir)
    params = write_params(workdir)
    for seed, model in enumerate([*params["cnn_members"], *OTHER_MODELS]):  # every member of the default ensemble
        save_predictions(model, probabilities(24, seed), probabilities(12, seed + 3))
    val = np.asarray(spoil(probabilities(24, 1)))
    save_npz(workdir / "predictions" / "knn.npz", val=val, test=probabilities(12, 4))
    for stage in (evaluate, submit):
        with pytest.raises(SystemExit) as exit_:
            stage.main()
        assert exit_.value.code == 1
        line = error_line(capsys)
        assert line.startswith(f"{stage.__name__.rsplit('.', 1)[1]}: error: predictions/knn.npz: {problem}")
        assert line.endswith("expected float32 class probabilities of shape (N, 10); "
                             "regenerate it with `dvc repro -f train_knn`")
    assert not (workdir / "submissions").exists() and not (workdir / "reports").exists()


def test_probabilities_within_float32_rounding_are_accepted():
    p = probabilities(1000, 0)
    p[:, 0] += np.float32(3e-7)  # float32 rounding of ten terms, ensemble weights rounded to six decimals
    assert check_probabilities("p.npz", "val", p) is p


def test_models_and_checkpoints_with_nan_are_refused_naming_the_file(workdir):
    shutil.copy(ROOT / "dvc.yaml", workdir)
    shutil.copy(ROOT / "params.yaml", workdir)  # names train_cnn's members: the file is train_cnn@cnn's
    model = nn.build(TINY_CNN["layers"], seed=0)
    model.layers[1].params["weight"][0, 0] = np.nan
    nn.save(model, "models/cnn.npz", TINY_CNN["layers"], (1, 28, 28))
    with pytest.raises(DigitsError, match=r"^models/cnn.npz: .* holds NaN .*`dvc repro -f train_cnn@cnn`$"):
        nn.load("models/cnn.npz")

    x = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    fitted = knn.KNNModel().fit_with(x, np.arange(30) % 10, {"transforms": [], "n_neighbors": 3, "weights": "uniform",
                                                    "metric": "euclidean", "batch_size": 64})
    fitted.classifier.X_fit_[2, 3] = np.inf
    fitted.save("models/knn.npz")
    with pytest.raises(DigitsError, match=r"^models/knn.npz: 'features' holds NaN or infinite .*train_knn`$"):
        knn.KNNModel.load("models/knn.npz")

    net = resnet.build_resnet("resnet18", "mid", seed=0)
    with torch.no_grad():
        net.fc.bias[3] = float("nan")
    resnet.save(net, "models/resnet.pt", "resnet18", "mid")
    with pytest.raises(DigitsError, match=r"^models/resnet.pt: 'fc.bias' holds NaN .*`dvc repro -f train_resnet`$"):
        resnet.load("models/resnet.pt")


# 5. no library advice to load a file unsafely

class Payload:
    def __reduce__(self):
        return print, ("executed",)


@pytest.mark.parametrize("path, load, expected", [
    ("models/resnet.pt", lambda p: resnet.load(p), "not a ResNet written by digits"),
    ("models/cnn.npz", nn.load, "not a numpy CNN model"),
    ("models/knn.npz", knn.KNNModel.load, "not a k-NN model"),
    ("predictions/cnn.npz", lambda p: evaluate.load_predictions("cnn"), "not a .npz of plain arrays"),
], ids=["resnet", "cnn", "knn", "predictions"])
@pytest.mark.parametrize("content", ["pickle", "random bytes"])
def test_an_unreadable_file_is_described_without_advice_to_load_it_unsafely(workdir, capsys, path, load, expected,
                                                                               content):
    shutil.copy(ROOT / "dvc.yaml", workdir)
    shutil.copy(ROOT / "params.yaml", workdir)
    target = workdir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if content == "pickle":
        torch.save({"arch": "resnet18", "state_dict": Payload()}, target) if path.endswith(".pt") else \
            target.write_bytes(pickle.dumps(Payload()))
    else:
        target.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DigitsError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {expected}") and "`dvc repro -f " in message
    for advice in ("weights_only", "allow_pickle", "unsafe", "trust"):
        assert advice not in message
    assert "executed" not in capsys.readouterr().out


# 6. provenance

def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_only_for_changes_that_affect_results(tmp_path, monkeypatch):
    for rel in ("src/digits/a.py", "params.yaml", "dvc.yaml", "dvc.lock", "metrics/time/download.json", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "c")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics" / "time" / "download.json").unlink()  # as `dvc repro` does before the stage runs
    (tmp_path / "dvc.lock").write_text("rewritten by dvc\n")
    (tmp_path / "README.md").write_text("edited\n")
    assert not provenance.environment()["git_commit"].endswith("+dirty")
    for rel in ("params.yaml", "src/digits/new.py", "requirements.lock"):
        (tmp_path / rel).write_text("changed\n")
        assert provenance.environment()["git_commit"].endswith("+dirty"), rel
        git(tmp_path, "add", "-A")
        git(tmp_path, "commit", "-qm", rel)


def test_the_sample_manifest_holds_nothing_of_the_users_home(tmp_path, monkeypatch):
    home = tmp_path / "home-of-someone"
    monkeypatch.setenv("HOME", str(home))
    for name in ("KAGGLE_CONFIG_DIR", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    manifest = json.dumps(fetch("auto").manifest())
    assert "home-of-someone" not in manifest and str(tmp_path) not in manifest


# 2. the process that started the stage dies

def test_a_stage_stops_when_its_starter_dies_even_through_a_shell_that_stays(workdir):
    write_params(workdir, cnn={**TINY_CNN, "epochs": 100_000})
    stage = f"{shlex.quote(sys.executable)} -m digits.stages.train_cnn; true"  # `; true`: the shell cannot exec
    starter = f"import subprocess; subprocess.run(['sh', '-c', {stage!r}])"  # stands in for dvc
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DVC_STAGE": "train_cnn"}
    process = subprocess.Popen([sys.executable, "-c", starter], cwd=workdir, env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        logged = workdir / "dvclive" / "cnn" / "plots" / "metrics" / "train_loss.tsv"
        deadline = time.monotonic() + 120
        while not logged.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert logged.exists(), "train_cnn did not start"
        process.kill()  # the starter only; the shell and the stage stay, reparented
        _, err = process.communicate(timeout=60)  # stderr closes once the stage has gone too
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
    assert err.strip() == ("train_cnn: interrupted, and its parent process (dvc) is gone; no output was left "
                           "half-written, rerun `dvc repro`")
    assert not (workdir / "models" / "cnn.npz").exists() and temporaries(workdir) == []
