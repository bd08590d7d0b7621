"""SGD, Adam, AdamW and the schedules follow torch.optim step by step on the same parameters and gradients."""

import numpy as np
import pytest
import torch

from digits.errors import DigitsError
from digits.nn import SGD, Adam, AdamW, CosineLR, OneCycleLR, StepLR

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
    "momentum, nesterov, weight_decay",
    [(0.0, False, 0.0), (0.9, False, 0.0), (0.0, False, 0.01), (0.8, False, 0.05), (0.9, True, 0.0), (0.7, True, 0.02)],
)
def test_sgd_matches_torch(momentum, nesterov, weight_decay):
    history = run_both(
        lambda ps: SGD(ps, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
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


@pytest.mark.parametrize("betas, eps, weight_decay", [((0.9, 0.999), 1e-8, 0.01), ((0.8, 0.99), 1e-6, 0.3)])
def test_adamw_matches_torch(betas, eps, weight_decay):
    history = run_both(
        lambda ps: AdamW(ps, lr=0.01, betas=betas, eps=eps, weight_decay=weight_decay),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=betas, eps=eps, weight_decay=weight_decay),
    )
    assert_same_history(history)


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With a zero gradient Adam's step is zero, so AdamW only shrinks the weights, by lr * weight_decay."""
    param = np.ones(3)
    optimizer = AdamW([("p", param, np.zeros(3))], lr=0.1, weight_decay=0.5)
    optimizer.step()
    np.testing.assert_allclose(param, 0.95)


@pytest.mark.parametrize(
    "make_ours, make_torch, steps",
    [
        (lambda o: StepLR(o, step_size=3, gamma=0.4),
         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.4), 10),
        (lambda o: CosineLR(o, total_steps=12),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12), 12),
        (lambda o: CosineLR(o, total_steps=7, min_lr=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01), 7),
        (lambda o: OneCycleLR(o, total_steps=20),
         lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=20, cycle_momentum=False), 20),
        (lambda o: OneCycleLR(o, total_steps=50, warmup=0.1, div_factor=10, final_div_factor=100),
         lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=50, pct_start=0.1, div_factor=10,
                                                       final_div_factor=100, cycle_momentum=False), 50),
    ],
    ids=["step", "cosine", "cosine-min", "onecycle", "onecycle-short-warmup"],
)
def test_schedules_match_torch_step_by_step(make_ours, make_torch, steps):
    ours = SGD([("p", np.zeros(2), np.zeros(2))], lr=0.1)
    schedule = make_ours(ours)
    torch_optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    torch_schedule = make_torch(torch_optimizer)
    lrs = [ours.lr]
    assert ours.lr == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-12)
    for step in range(steps):
        torch_optimizer.step()
        schedule.step()
        torch_schedule.step()
        assert ours.lr == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-9), f"step {step + 1}"
        lrs.append(ours.lr)
    assert len(set(lrs)) > 2  # the rate did move


def test_one_cycle_warms_up_to_the_base_lr_then_anneals_far_below():
    optimizer = SGD([("p", np.zeros(1), np.zeros(1))], lr=0.2)
    schedule = OneCycleLR(optimizer, total_steps=100, warmup=0.25)
    lrs = [optimizer.lr]
    for _ in range(99):
        schedule.step()
        lrs.append(optimizer.lr)
    assert lrs[0] == pytest.approx(0.2 / 25)
    assert max(lrs) == pytest.approx(0.2) and int(np.argmax(lrs)) == 24
    assert np.all(np.diff(lrs[:25]) > 0) and np.all(np.diff(lrs[24:]) < 0)
    assert lrs[-1] == pytest.approx(0.2 / 25 / 1e4)


def test_sgd_step_uses_the_scheduled_lr():
    param, grad = np.ones(3), np.ones(3)
    optimizer = SGD([("p", param, grad)], lr=1.0)
    optimizer.lr = 0.25
    optimizer.step()
    np.testing.assert_allclose(param, 0.75)


def test_optimizers_keep_float32_params_float32():
    param, grad = np.ones(4, dtype=np.float32), np.full(4, 0.5, dtype=np.float32)
    for optimizer in (SGD([("p", param, grad)], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                      Adam([("p", param, grad)], weight_decay=0.01), AdamW([("p", param, grad)])):
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
        lambda: SGD([], lr=0.1, nesterov=True),
        lambda: SGD([], lr=0.1, momentum=0.9, nesterov="yes"),
        lambda: AdamW([], weight_decay=-0.1),
        lambda: Adam([], betas=0.9),
        lambda: CosineLR(SGD([], lr=0.1), total_steps=0),
        lambda: OneCycleLR(SGD([], lr=0.1), total_steps=10, warmup=1.0),
        lambda: OneCycleLR(SGD([], lr=0.1), total_steps=10, warmup=0.05),
        lambda: OneCycleLR(SGD([], lr=0.1), total_steps=10, div_factor=0.5),
    ],
)
def test_bad_settings_raise_digits_error(make):
    with pytest.raises(DigitsError):
        make()


@pytest.mark.parametrize(
    "make",
    [lambda params: SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda params: Adam(params, lr=0.01, weight_decay=0.01), lambda params: AdamW(params, lr=0.01)],
)
def test_state_dict_continues_training_exactly(make):
    """Three steps, then state_dict into a fresh optimizer on copied params: both continue identically."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(shape) for shape in SHAPES]
    grads = [np.zeros(shape) for shape in SHAPES]
    first = make([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads))])
    first_schedule = OneCycleLR(first, total_steps=10)
    copies = [p.copy() for p in params]
    for step in range(6):
        if step == 3:
            copies = [p.copy() for p in params]
            second = make([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(copies, grads))])
            second_schedule = OneCycleLR(second, total_steps=10)
            second.load_state_dict(first.state_dict())
            second_schedule.load_state_dict(first_schedule.state_dict())
            assert second.lr == first.lr
        for grad in grads:
            grad[...] = rng.standard_normal(grad.shape)
        for optimizer, schedule in [(first, first_schedule)] + ([(second, second_schedule)] if step >= 3 else []):
            optimizer.step()
            schedule.step()
    for ours, resumed in zip(params, copies):
        np.testing.assert_array_equal(ours, resumed)


def test_load_state_dict_refuses_state_of_other_parameters():
    param, grad = np.ones(4), np.ones(4)
    adam = Adam([("p", param, grad)])
    adam.step()
    with pytest.raises(DigitsError, match=r"Adam state m\.0 is float64\(4,\), expected float64\(3,\)"):
        Adam([("p", np.ones(3), np.ones(3))]).load_state_dict(adam.state_dict())
    with pytest.raises(DigitsError, match=r"SGD state does not fit these parameters \(unknown: \['momentum\.1'\]"):
        SGD([("p", param, grad)], lr=0.1, momentum=0.9).load_state_dict({"momentum.1": np.ones(4)})
