"""SGD, Adam and StepLR follow torch.optim step by step on the same parameters and gradients."""

import numpy as np
import pytest
import torch

from digits.errors import DigitsError
from digits.nn import SGD, Adam, StepLR

SHAPES = [(3, 4), (5,)]
STEPS = 5


def run_both(make_ours, make_torch, seed=0):
    """Apply the same gradient sequence with both optimizers; return both parameter histories."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape) for shape in SHAPES]
    grads = [np.zeros(shape) for shape in SHAPES]
    torch_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
    ours = make_ours([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads))])
    theirs = make_torch(torch_params)
    history = []
    for _ in range(STEPS):
        for grad, torch_param in zip(grads, torch_params):
            grad[...] = rng.standard_normal(grad.shape)
            torch_param.grad = torch.from_numpy(grad.copy())
        ours.step()
        theirs.step()
        history.append(([p.copy() for p in params], [p.detach().numpy().copy() for p in torch_params]))
    return history


def assert_same_history(history):
    for step, (ours, theirs) in enumerate(history):
        for mine, torch_value in zip(ours, theirs):
            np.testing.assert_allclose(mine, torch_value, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


@pytest.mark.parametrize(
    "momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01), (0.8, 0.05)],
)
def test_sgd_matches_torch(momentum, weight_decay):
    history = run_both(
        lambda ps: SGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, weight_decay=weight_decay),
    )
    assert_same_history(history)
    assert not np.allclose(history[0][0][0], history[-1][0][0])


@pytest.mark.parametrize(
    "betas, eps, weight_decay", [((0.9, 0.999), 1e-8, 0.0), ((0.8, 0.99), 1e-6, 0.01)],
)
def test_adam_matches_torch(betas, eps, weight_decay):
    history = run_both(
        lambda ps: Adam(ps, lr=0.01, betas=betas, eps=eps, weight_decay=weight_decay),
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=betas, eps=eps, weight_decay=weight_decay),
    )
    assert_same_history(history)


def test_steplr_matches_torch_and_drives_the_update():
    ours = SGD([("p", np.zeros(2), np.zeros(2))], lr=0.1)
    scheduler = StepLR(ours, step_size=3, gamma=0.5)
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    torch_scheduler = torch.optim.lr_scheduler.StepLR(torch_optimizer, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(8):
        torch_optimizer.step()
        scheduler.step()
        torch_scheduler.step()
        assert ours.lr == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-12)
        lrs.append(ours.lr)
    assert lrs[:3] == pytest.approx([0.1, 0.1, 0.05])


def test_sgd_step_uses_the_scheduled_lr():
    param, grad = np.ones(3), np.ones(3)
    optimizer = SGD([("p", param, grad)], lr=1.0)
    optimizer.lr = 0.25
    optimizer.step()
    np.testing.assert_allclose(param, 0.75)


def test_optimizers_keep_float32_params_float32():
    param, grad = np.ones(4, dtype=np.float32), np.full(4, 0.5, dtype=np.float32)
    for optimizer in (SGD([("p", param, grad)], lr=0.1, momentum=0.9, weight_decay=0.01),
                      Adam([("p", param, grad)], weight_decay=0.01)):
        optimizer.step()
        assert param.dtype == np.float32
        assert np.all(param < 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD([], lr=-0.1),
        lambda: SGD([], lr=0.1, momentum=-1),
        lambda: SGD([], lr="fast"),
        lambda: Adam([], betas=(1.0, 0.999)),
        lambda: Adam([], eps=-1e-8),
        lambda: StepLR(SGD([], lr=0.1), step_size=0, gamma=0.5),
        lambda: StepLR(SGD([], lr=0.1), step_size=2, gamma=-0.5),
    ],
)
def test_bad_settings_raise_digits_error(make):
    with pytest.raises(DigitsError):
        make()
