import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torchvision

from digits import resnet
from digits.errors import DigitsError
from digits.params import ResNetProfile

CPU = torch.device("cpu")


def two_class_images(n=64, seed=0):
    """n uint8 images (n, 28, 28): class 0 bright on the left half, class 1 on the right, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 60, size=(n, 28, 28))
    for label, columns in ((0, slice(0, 14)), (1, slice(14, 28))):
        x[y == label, :, columns] += 180
    return x.astype(np.uint8), y


def config(**overrides):
    return ResNetProfile(**{"arch": "resnet18", "stem": "stock", "epochs": 3, "batch_size": 16, "optimizer": "adamw",
                            "lr": 1e-3, "weight_decay": 0.0, "schedule": "onecycle", "label_smoothing": 0.0,
                            "degrees": 0.0, "translate": 0.0, "scale": 0.0, "bf16": False, **overrides})


def fit(seed=0, on_epoch=None, **overrides):
    x, y = two_class_images()
    model = resnet.build_resnet("resnet18", num_classes=2, seed=seed)
    return resnet.train(model, x, y, config(**overrides), seed=seed, device=CPU, on_epoch=on_epoch)


@pytest.mark.parametrize(("arch", "stem", "batch"), [
    ("resnet18", "stock", 3), ("resnet18", "mid", 2), ("resnet18", "small", 1),
    ("resnet34", "stock", 2), ("resnet50", "stock", 2), ("resnet50", "mid", 1)])
def test_each_arch_and_stem_gives_logits(arch, stem, batch):
    model = resnet.build_resnet(arch, stem).eval()
    assert model.conv1.in_channels == 1 and model.conv1.bias is None
    with torch.inference_mode():
        logits = model(torch.randn(batch, 1, 28, 28))
    assert logits.shape == (batch, 10)


def test_stems_set_the_resolution_layer1_sees():
    sizes = {}
    for stem in resnet.STEMS:
        model = resnet.build_resnet("resnet18", stem).eval()
        model.layer1.register_forward_hook(lambda m, i, out, stem=stem: sizes.__setitem__(stem, out.shape[-1]))
        with torch.inference_mode():
            model(torch.zeros(1, 1, 28, 28))
    assert sizes == {"stock": 7, "mid": 14, "small": 28}


def test_training_lowers_the_loss_and_reports_each_epoch():
    history = []
    model = fit(on_epoch=lambda *values: history.append(values), degrees=10, translate=0.1, scale=0.1,
                label_smoothing=0.1)
    assert [epoch for epoch, *_ in history] == [0, 1, 2]
    losses = [loss for _, loss, _, _ in history]
    assert losses[-1] < losses[0]
    assert all(0.0 <= accuracy <= 1.0 for _, _, accuracy, _ in history)
    assert history[-1][3] < 1e-3 / 10  # one-cycle anneals far below the peak by the end
    x, _ = two_class_images(16, seed=1)
    proba = resnet.predict_proba(model, x, device=CPU, batch_size=5)
    assert proba.shape == (16, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_bf16_training_lowers_the_loss_and_predicts_close_to_float32():
    history = []
    model = fit(on_epoch=lambda *values: history.append(values), bf16=True)
    assert history[-1][1] < history[0][1]
    x, _ = two_class_images(16, seed=1)
    half, full = (resnet.predict_proba(model, x, device=CPU, bf16=bf16) for bf16 in (True, False))
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, full, atol=0.05)
    natively = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    with resnet.bf16_autocast(CPU, True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if natively else torch.float32)
    with resnet.bf16_autocast(CPU, False):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_sgd_with_cosine_schedule_trains_too():
    history = []
    fit(on_epoch=lambda *values: history.append(values), optimizer="sgd", schedule="cosine", lr=0.05)
    assert history[-1][1] < history[0][1]


def test_same_seed_gives_identical_weights():
    torch.use_deterministic_algorithms(True)
    try:
        first, second = fit(3, epochs=2, degrees=10).state_dict(), fit(3, epochs=2, degrees=10).state_dict()
    finally:
        torch.use_deterministic_algorithms(False)
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_resume_after_an_interruption_ends_with_the_same_weights(tmp_path):
    x, y = two_class_images(32)
    full = resnet.train(resnet.build_resnet("resnet18", num_classes=2, seed=0), x, y, config(epochs=2, degrees=10),
                        device=CPU, checkpoint=tmp_path / "full.pt")

    class Interrupted(Exception):
        pass

    def stop_after_first(epoch, *_):
        if epoch == 1:  # after the first epoch's checkpoint
            raise Interrupted
        return {"epoch": epoch}

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Interrupted):
        resnet.train(resnet.build_resnet("resnet18", num_classes=2, seed=0), x, y, config(epochs=2, degrees=10),
                     device=CPU, on_epoch=stop_after_first, checkpoint=ckpt)
    epochs, replayed = [], []
    resumed = resnet.train(resnet.build_resnet("resnet18", num_classes=2, seed=0), x, y, config(epochs=2, degrees=10),
                           device=CPU, on_epoch=lambda epoch, *_: epochs.append(epoch), checkpoint=ckpt, resume=True,
                           on_resume=replayed.extend)
    assert epochs == [1] and replayed == [{"epoch": 0}]
    assert all(torch.equal(full.state_dict()[k], resumed.state_dict()[k]) for k in full.state_dict())
    with pytest.raises(DigitsError, match=r"run\.pt: made with other training params or data \(lr\)"):
        resnet.train(resnet.build_resnet("resnet18", num_classes=2), x, y, config(epochs=2, degrees=10, lr=0.1),
                     device=CPU, checkpoint=ckpt, resume=True)


def test_save_load_round_trip(tmp_path):
    model = resnet.build_resnet("resnet18", "mid", seed=0)
    x, _ = two_class_images(8)
    path = tmp_path / "model.pt"
    resnet.save(model, path, "resnet18", "mid", tta=True)
    loaded, settings = resnet.load(path)
    assert settings == {"arch": "resnet18", "stem": "mid", "tta": True}
    assert isinstance(loaded.maxpool, torch.nn.Identity)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    np.testing.assert_array_equal(resnet.predict_proba(loaded, x, device=CPU), resnet.predict_proba(model, x, device=CPU))


def test_a_model_file_from_before_tta_was_kept_predicts_without_it(tmp_path):
    model = resnet.build_resnet("resnet18", seed=0)
    torch.save({"arch": "resnet18", "stem": "stock", "state_dict": model.state_dict()}, tmp_path / "old.pt")
    assert resnet.load(tmp_path / "old.pt")[1]["tta"] is False


def test_tta_averages_the_image_and_its_four_one_pixel_shifts():
    from torchvision.transforms.v2 import functional as F

    model = fit()
    x, _ = two_class_images(12, seed=2)
    images = torch.from_numpy(x).unsqueeze(1)
    moved = [F.affine(images, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0]).squeeze(1).numpy()
             for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1)]]
    expected = np.mean([resnet.predict_proba(model, v, device=CPU) for v in [x, *moved]], axis=0)
    proba = resnet.predict_proba(model, x, device=CPU, batch_size=5, tta=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(proba, resnet.predict_proba(model, x, device=CPU), atol=1e-6)  # the shifts count


def test_saved_bytes_do_not_depend_on_the_file_name(tmp_path):
    model = resnet.build_resnet("resnet18", seed=0)
    resnet.save(model, tmp_path / "a.pt", "resnet18", "stock")
    resnet.save(model, tmp_path / "b.pt", "resnet18", "stock")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


class Payload:
    """Unpickling this would run code; a model file must never get that far."""

    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize("content", [
    lambda path: torch.save({"arch": "resnet18", "stem": "stock", "state_dict": Payload()}, path),
    lambda path: torch.save({"arch": "resnet18", "stem": "stock", "state_dict": {"fc.weight": torch.zeros(10, 3)}},
                            path),
    lambda path: path.write_bytes(b"not a checkpoint"),
])
def test_a_bad_or_pickle_bearing_model_file_is_refused(tmp_path, capsys, content):
    path = tmp_path / "resnet.pt"
    content(path)
    with pytest.raises(DigitsError, match=r"resnet\.pt: not a ResNet written by digits"):
        resnet.load(path)
    assert "executed" not in capsys.readouterr().out


def imagenet_like_state(arch="resnet18"):
    """A state dict shaped like torchvision's ImageNet weights (RGB first conv, 1000-way classifier)."""
    import torchvision

    torch.manual_seed(1)
    return getattr(torchvision.models, arch)(weights=None).state_dict()


def test_pretrained_weights_from_a_file_map_layer_by_layer(tmp_path):
    state = imagenet_like_state()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = resnet.build_resnet("resnet18", "stock", seed=0)
    head = model.fc.weight.clone()
    resnet.load_weights(model, str(path), "resnet18")
    own = model.state_dict()
    assert torch.equal(own["conv1.weight"], state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(own["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])
    assert torch.equal(own["bn1.running_var"], state["bn1.running_var"])
    assert torch.equal(model.fc.weight, head)  # the 10-way classifier stays as initialised


def test_pretrained_weights_skip_a_first_conv_of_another_stem(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": imagenet_like_state()}, path)  # also accepted: a dict holding the state dict
    model = resnet.build_resnet("resnet18", "small", seed=0)
    first = model.conv1.weight.clone()
    resnet.load_weights(model, str(path), "resnet18")
    assert torch.equal(model.conv1.weight, first)


@pytest.mark.parametrize("write, message", [
    (lambda p: torch.save(imagenet_like_state("resnet50"), p), r"resnet18\.pth: layer1\.0\.conv1\.weight has shape"),
    (lambda p: torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, p), r"not a resnet18 state dict \(\d+ tensors missing"),
    (lambda p: p.write_bytes(b"junk"), r"resnet18\.pth: not a torch state dict"),
    (lambda p: torch.save({"model": Payload()}, p), r"resnet18\.pth: not a torch state dict"),
])
def test_a_wrong_weights_file_gets_a_clear_error(tmp_path, write, message):
    path = tmp_path / "resnet18.pth"
    write(path)
    with pytest.raises(DigitsError, match=message):
        resnet.load_weights(resnet.build_resnet("resnet18"), str(path), "resnet18")


def test_missing_weights_file_and_offline_imagenet(tmp_path, monkeypatch):
    with pytest.raises(DigitsError, match=r"nowhere\.pth: no such file"):
        resnet.load_weights(resnet.build_resnet(), str(tmp_path / "nowhere.pth"), "resnet18")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: torchvision must try to download
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # and fail fast, as on a machine without network
    for name in ("no_proxy", "NO_PROXY", "HTTPS_PROXY"):  # nothing may exempt the download or send it elsewhere
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DigitsError, match=r"imagenet: cannot download .*resnet18-f37072fd\.pth.*copy that file to"):
        resnet.load_weights(resnet.build_resnet(), "imagenet", "resnet18")


def test_pick_device():
    assert resnet.pick_device("cpu") == CPU
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
    with pytest.raises(DigitsError, match=r"'tiny'.*stock, mid, small"):
        resnet.build_resnet("resnet18", "tiny")
    model = resnet.build_resnet()
    with pytest.raises(DigitsError, match=r"uint8.*float64"):
        resnet.predict_proba(model, np.zeros((2, 28, 28)), device=CPU)
    x, y = two_class_images(4)
    with pytest.raises(DigitsError, match=r"\(4,\).*\(3,\)"):
        resnet.train(model, x, y[:3], config(), device=CPU)


def test_scoring_between_epochs_does_not_leave_training_in_eval_mode():
    x, y = two_class_images()
    model = resnet.build_resnet("resnet18", num_classes=2, seed=0)
    running_means = []

    def score(*_):
        resnet.predict_proba(model, x[:4], device=CPU)  # switches the model to eval mode
        running_means.append(model.bn1.running_mean.clone())

    resnet.train(model, x, y, config(epochs=2), device=CPU, on_epoch=score)
    assert not torch.equal(running_means[0], running_means[1])  # batch norm kept training in epoch 2


def _train_one_rank(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    x, y = two_class_images(64)
    epochs = []
    with resnet.distributed("cpu") as (device, got_rank):
        model = resnet.build_resnet("resnet18", num_classes=2, seed=0)
        resnet.train(model, x, y, config(epochs=2), device=device, on_epoch=lambda e, *_: epochs.append(e))
    torch.save({"rank": got_rank, "epochs": epochs, "state": model.state_dict()}, f"{out}/rank{rank}.pt")


def test_distributed_data_parallel_with_gloo_keeps_the_ranks_in_step(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_train_one_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["epochs"] == [0, 1] and ranks[1]["epochs"] == []  # only rank 0 reports
    first, second = ranks[0]["state"], ranks[1]["state"]
    weights = [k for k in first if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(first[k], second[k]) for k in weights)  # gradients were averaged across ranks
    single = fit(epochs=2).state_dict()
    assert not torch.equal(first["fc.weight"], single["fc.weight"])  # each rank saw only its shard
