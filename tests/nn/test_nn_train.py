"""train_epoch and predict_proba: reproducibility, learning on a toy problem, dtypes and modes."""

import platform
import resource

import numpy as np
import pytest

from digits.errors import DigitsError
from digits.nn import SGD, Adam, AdamW, OneCycleLR, RandomAffine, build, predict_proba, train_epoch

TINY_SPEC = [{"conv2d": {"out_channels": 4, "kernel_size": 3}}, "relu", {"maxpool2d": {"kernel_size": 2}},
             "flatten", {"dropout": {"p": 0.25}}, {"linear": {"out_features": 3}}]
SHAPE = (1, 8, 8)


def random_data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, *SHAPE), dtype=np.float32), rng.integers(0, 3, size=n)


def toy_data(n, seed):
    """Three separable classes: a bright top band, a bright bottom band, or neither, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = rng.normal(0.0, 0.3, size=(n, *SHAPE)).astype(np.float32)
    x[y == 0, :, :3] += 1.0
    x[y == 1, :, 5:] += 1.0
    return x, y


FULL_SPEC = [{"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}}, "batchnorm2d", "relu",
             {"maxpool2d": {"kernel_size": 2}}, {"conv2d": {"out_channels": 6, "kernel_size": 3, "method": "fft"}},
             "relu", "flatten", {"dropout": {"p": 0.25}}, {"linear": {"out_features": 3}}]


def trained_weights(seed):
    """Weights, buffers and per-epoch results after two epochs with every source of randomness in play."""
    model = build(FULL_SPEC, input_shape=SHAPE, seed=seed)
    optimizer = AdamW(model.parameters(), lr=0.01)
    schedule = OneCycleLR(optimizer, total_steps=8)
    x, y = random_data(50, seed=1)
    rng = np.random.default_rng(seed)
    results = [train_epoch(model, optimizer, x, y, batch_size=16, rng=rng, schedule=schedule,
                           augment=RandomAffine(10, 0.1, 0.1), label_smoothing=0.1) for _ in range(2)]
    state = [param.copy() for _, param, _ in model.parameters()] + [value.copy() for _, value in model.buffers()]
    return state, results


def test_same_seed_gives_bitwise_identical_training():
    first, first_results = trained_weights(seed=7)
    second, second_results = trained_weights(seed=7)
    other, _ = trained_weights(seed=8)
    assert first_results == second_results
    for a, b, c in zip(first, second, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("make_optimizer", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.01)])
def test_training_on_a_separable_toy_problem_lowers_the_loss(make_optimizer):
    model = build(TINY_SPEC, input_shape=SHAPE, seed=0)
    optimizer = make_optimizer(model.parameters())
    x, y = toy_data(300, seed=2)
    rng = np.random.default_rng(0)
    history = [train_epoch(model, optimizer, x, y, batch_size=32, rng=rng) for _ in range(6)]
    first_loss, last_loss = history[0][0], history[-1][0]
    assert last_loss < 0.5 * first_loss
    assert history[-1][1] > 0.9
    x_test, y_test = toy_data(200, seed=3)
    assert (predict_proba(model, x_test).argmax(axis=1) == y_test).mean() > 0.9


def test_augmentation_and_schedule_run_per_batch_in_training_only():
    seen = []

    def augment(batch, rng):
        seen.append(len(batch))
        return batch[:, :, ::-1].copy()

    class CountingSchedule:
        steps = 0

        def step(self):
            self.steps += 1

    model = build(TINY_SPEC, input_shape=SHAPE, seed=0)
    x, y = random_data(40, seed=2)
    schedule = CountingSchedule()
    train_epoch(model, SGD(model.parameters(), lr=0.1), x, y, batch_size=16, rng=np.random.default_rng(0),
                schedule=schedule, augment=augment)
    assert seen == [16, 16, 8] and schedule.steps == 3
    predict_proba(model, x)
    assert len(seen) == 3


def test_the_whole_training_step_runs_with_one_blas_thread(blas_threads):
    """Augmentation and the optimizer step included: a multi-threaded BLAS call between two passes
    leaves OpenBLAS's threads spinning on the cores the network's pool needs."""
    seen = []

    class Watching(SGD):
        def step(self):
            seen.append(("step", blas_threads()))
            super().step()

    def augment(batch, rng):
        seen.append(("augment", blas_threads()))
        return batch

    before = blas_threads()
    model = build(TINY_SPEC, input_shape=SHAPE, seed=0)
    x, y = random_data(20, seed=2)
    train_epoch(model, Watching(model.parameters(), lr=0.1), x, y, batch_size=8, rng=np.random.default_rng(0),
                augment=augment)
    assert [name for name, _ in seen] == ["augment", "step"] * 3
    assert all(set(threads) == {1} for _, threads in seen)
    assert blas_threads() == before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="digits.memory changes glibc's malloc only")
def test_epochs_after_the_first_reuse_freed_memory_without_new_pages():
    """Each step frees arrays of several MiB; glibc by default hands them back to the kernel, and the next
    step pays a page fault for every 4 KiB it allocates again (a fifth of a step of cnn2's network)."""
    model = build([{"conv2d": {"out_channels": 32, "kernel_size": 3, "bias": False}}, "batchnorm2d", "relu",
                   {"conv2d": {"out_channels": 32, "kernel_size": 3, "bias": False}}, "flatten",
                   {"linear": {"out_features": 3}}], input_shape=(1, 28, 28), seed=0)
    optimizer = SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    x, y = rng.random((256, 1, 28, 28), dtype=np.float32), rng.integers(0, 3, size=256)
    for _ in range(2):  # the first epochs take the pages the heap needs
        train_epoch(model, optimizer, x, y, batch_size=128, rng=rng)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    train_epoch(model, optimizer, x, y, batch_size=128, rng=rng)
    predict_proba(model, x, batch_size=128)
    # without keep_freed_memory about 2,300 (a step allocates about 20 MiB); Python's own small arenas a few
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 300


def test_float64_network_trains_in_float64():
    model = build(FULL_SPEC, input_shape=SHAPE, seed=0, dtype=np.float64)
    x, y = toy_data(64, seed=3)
    train_epoch(model, Adam(model.parameters(), lr=0.01), x.astype(np.float64), y, batch_size=16,
                rng=np.random.default_rng(0), augment=RandomAffine(5))
    assert all(param.dtype == np.float64 for _, param, _ in model.parameters())
    assert predict_proba(model, x.astype(np.float64)).dtype == np.float32  # the documented output type


def test_train_epoch_returns_batch_weighted_mean_loss_and_accuracy():
    model = build(["flatten", {"linear": {"out_features": 3}}], input_shape=SHAPE, seed=0)
    x, y = random_data(10, seed=4)
    probs = predict_proba(model, x)
    expected_loss = float(np.mean(-np.log(probs[np.arange(10), y])))
    expected_accuracy = float(np.mean(probs.argmax(axis=1) == y))
    loss, accuracy = train_epoch(model, SGD(model.parameters(), lr=0.0), x, y, batch_size=4,
                                 rng=np.random.default_rng(0))  # lr 0: batches 4+4+2 all see the same weights
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert accuracy == pytest.approx(expected_accuracy)


class RecordingModel:
    """Stands in for a model: remembers which images it saw and predicts label = image id % 3."""

    def __init__(self):
        self.batches = []
        self.backward_calls = 0

    def train(self):
        pass

    def forward(self, x):
        ids = x[:, 0, 0, 0].astype(int)
        self.batches.append(ids)
        return np.eye(3, dtype=np.float32)[ids % 3] * 10

    def backward(self, dout, input_grad=True):
        assert not input_grad  # training never needs the gradient w.r.t. the images
        self.backward_calls += 1


class CountingOptimizer:
    steps = 0

    def step(self):
        self.steps += 1


def test_train_epoch_visits_every_example_once_in_shuffled_minibatches():
    x = np.zeros((10, *SHAPE), dtype=np.float32)
    x[:, 0, 0, 0] = np.arange(10)
    y = np.arange(10) % 3
    model, optimizer = RecordingModel(), CountingOptimizer()
    _, accuracy = train_epoch(model, optimizer, x, y, batch_size=4, rng=np.random.default_rng(0))
    assert [len(batch) for batch in model.batches] == [4, 4, 2]
    order = np.concatenate(model.batches)
    assert sorted(order) == list(range(10)) and list(order) != list(range(10))
    assert accuracy == 1.0  # labels travel with their images
    assert model.backward_calls == optimizer.steps == 3


def test_train_epoch_rejects_mismatched_or_empty_data():
    model = build(TINY_SPEC, input_shape=SHAPE, seed=0)
    optimizer = SGD(model.parameters(), lr=0.1)
    x, y = random_data(5, seed=5)
    with pytest.raises(DigitsError):
        train_epoch(model, optimizer, x, y[:4], batch_size=2, rng=np.random.default_rng(0))
    with pytest.raises(DigitsError):
        train_epoch(model, optimizer, x[:0], y[:0], batch_size=2, rng=np.random.default_rng(0))


@pytest.mark.parametrize("training", [True, False])
def test_predict_proba_uses_eval_mode_and_restores_the_mode(training):
    model = build(TINY_SPEC, input_shape=SHAPE, seed=0)
    if not training:
        model.eval()
    x, _ = random_data(25, seed=6)
    probs = predict_proba(model, x, batch_size=10)
    assert model.training is training
    assert all(layer.training is training for layer in model.layers)
    assert probs.shape == (25, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    # Eval mode has no dropout noise, so other batches give the same probabilities up to float32 rounding: BLAS may
    # sum a product in another order for another batch shape (a few units in the last place, about 1e-7).
    np.testing.assert_allclose(probs, predict_proba(model, x, batch_size=7), rtol=1e-5, atol=1e-6)


def test_float32_stays_float32_through_forward_and_backward():
    spec = [{"conv2d": {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}}, "relu",
            {"maxpool2d": {"kernel_size": 3, "stride": 1}}, "flatten", {"dropout": {"p": 0.5}},
            {"linear": {"out_features": 5}}]
    model = build(spec, input_shape=(2, 9, 9), seed=0)
    x = np.random.default_rng(7).random((3, 2, 9, 9), dtype=np.float32)
    out = x
    for layer in model.layers:
        out = layer.forward(out)
        assert out.dtype == np.float32, type(layer).__name__
    dout = np.ones_like(out)
    for layer in reversed(model.layers):
        dout = layer.backward(dout)
        assert dout.dtype == np.float32, type(layer).__name__
    for name, param, grad in model.parameters():
        assert param.dtype == grad.dtype == np.float32, name
