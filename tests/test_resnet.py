import numpy as np
import pytest
import torch

from digits import resnet
from digits.errors import DigitsError


def two_class_images(n=64, seed=0):
    """n uint8 images (n, 28, 28): class 0 bright on the left half, class 1 on the right, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 60, size=(n, 28, 28))
    for label, columns in ((0, slice(0, 14)), (1, slice(14, 28))):
        x[y == label, :, columns] += 180
    return x.astype(np.uint8), y


def fit(seed, on_epoch=None):
    x, y = two_class_images()
    model = resnet.build_resnet("resnet18", num_classes=2, seed=seed)
    return resnet.train(model, x, y, epochs=3, batch_size=16, lr=1e-3, seed=seed, device="cpu", on_epoch=on_epoch)


@pytest.mark.parametrize(("arch", "batch"), [("resnet18", 3), ("resnet34", 2), ("resnet50", 2)])
def test_each_arch_gives_logits(arch, batch):
    model = resnet.build_resnet(arch).eval()
    assert model.conv1.in_channels == 1 and model.conv1.bias is None
    with torch.inference_mode():
        logits = model(torch.randn(batch, 1, 28, 28))
    assert logits.shape == (batch, 10)


def test_training_lowers_the_loss():
    history = []
    model = fit(0, on_epoch=lambda *values: history.append(values))
    assert [epoch for epoch, _, _ in history] == [0, 1, 2]
    losses = [loss for _, loss, _ in history]
    assert losses[-1] < losses[0]
    assert all(0.0 <= accuracy <= 1.0 for _, _, accuracy in history)
    x, y = two_class_images(16, seed=1)
    proba = resnet.predict_proba(model, x, device="cpu", batch_size=5)
    assert proba.shape == (16, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_same_seed_gives_identical_weights():
    torch.use_deterministic_algorithms(True)
    try:
        first, second = fit(3).state_dict(), fit(3).state_dict()
    finally:
        torch.use_deterministic_algorithms(False)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = resnet.build_resnet("resnet18")
    x, _ = two_class_images(8)
    path = tmp_path / "model.pt"
    resnet.save(model, path, "resnet18")
    loaded, arch = resnet.load(path)
    assert arch == "resnet18"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    np.testing.assert_array_equal(
        resnet.predict_proba(loaded, x, device="cpu"), resnet.predict_proba(model, x, device="cpu")
    )


def test_pick_device():
    assert resnet.pick_device("cpu") == torch.device("cpu")
    assert resnet.pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(DigitsError, match=r"'tpu'.*cpu"):
        resnet.pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="cuda is available here")
def test_pick_device_rejects_missing_cuda():
    with pytest.raises(DigitsError, match=r"'cuda' is not available.*cpu"):
        resnet.pick_device("cuda")


def test_bad_arguments():
    with pytest.raises(DigitsError, match=r"'vgg16'.*resnet18, resnet34, resnet50"):
        resnet.build_resnet("vgg16")
    model = resnet.build_resnet()
    with pytest.raises(DigitsError, match=r"uint8.*float64"):
        resnet.predict_proba(model, np.zeros((2, 28, 28)), device="cpu")
    x, y = two_class_images(4)
    with pytest.raises(DigitsError, match=r"\(4,\).*\(3,\)"):
        resnet.train(model, x, y[:3], epochs=1, batch_size=2, lr=1e-3, seed=0, device="cpu")


def test_scoring_between_epochs_does_not_leave_training_in_eval_mode():
    x, y = two_class_images()
    model = resnet.build_resnet("resnet18", num_classes=2, seed=0)
    running_means = []

    def score(epoch, loss, accuracy):
        resnet.predict_proba(model, x[:4], device="cpu")  # switches the model to eval mode
        running_means.append(model.bn1.running_mean.clone())

    resnet.train(model, x, y, epochs=2, batch_size=16, lr=1e-3, seed=0, device="cpu", on_epoch=score)
    assert not torch.equal(running_means[0], running_means[1])  # batch norm kept training in epoch 2


def test_saved_bytes_do_not_depend_on_the_file_name(tmp_path):
    model = resnet.build_resnet("resnet18", seed=0)
    resnet.save(model, tmp_path / "a.pt", "resnet18")
    resnet.save(model, tmp_path / "b.pt", "resnet18")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


class Payload:
    """Unpickling this would run code; a model file must never get that far."""

    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize("content", [
    lambda path: torch.save({"arch": "resnet18", "state_dict": Payload()}, path),
    lambda path: torch.save({"arch": "resnet18", "state_dict": {"fc.weight": torch.zeros(10, 3)}}, path),
    lambda path: path.write_bytes(b"not a checkpoint"),
])
def test_a_bad_or_pickle_bearing_file_is_refused(tmp_path, capsys, content):
    path = tmp_path / "resnet.pt"
    content(path)
    with pytest.raises(DigitsError, match=r"resnet\.pt: not a ResNet written by digits"):
        resnet.load(path)
    assert "executed" not in capsys.readouterr().out
