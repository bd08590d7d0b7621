"""Learning-rate schedules with torch's formulas, stepped once per optimizer step.

A schedule sets ``optimizer.lr`` when it is made (step 0) and after each
``step()``; sizes are counted in optimizer steps (batches), so a per-epoch
schedule takes ``epochs * batches_per_epoch``.
"""

import math
from abc import ABC, abstractmethod

from digits.errors import DigitsError
from digits.nn.optim import check_range


def _check_steps(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DigitsError(f"schedule setting {name} must be an integer >= 1, got {value!r}")
    return value


class _Schedule(ABC):
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.steps = 0
        optimizer.lr = self.lr_at(0)

    @abstractmethod
    def lr_at(self, step):
        """The learning rate after ``step`` optimizer steps."""

    def step(self):
        self.steps += 1
        self.optimizer.lr = self.lr_at(self.steps)

    def state_dict(self):
        """{"steps": optimizer steps taken so far}."""
        return {"steps": self.steps}

    def load_state_dict(self, state):
        """Continue from ``state_dict()``: the step count and the learning rate it gives."""
        self.steps = _check_steps("steps", state["steps"]) if state["steps"] else 0
        self.optimizer.lr = self.lr_at(self.steps)


class StepLR(_Schedule):
    """``base_lr * gamma ** (step // step_size)``, as ``torch.optim.lr_scheduler.StepLR``."""

    def __init__(self, optimizer, step_size, gamma):
        self.step_size = _check_steps("step_size", step_size)
        self.gamma = check_range("gamma", gamma, 0.0, kind="schedule")
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)


class CosineLR(_Schedule):
    """Half a cosine from ``base_lr`` down to ``min_lr`` over ``total_steps``, then ``min_lr``:
    ``min_lr + (base_lr - min_lr) (1 + cos(pi t / T)) / 2``, as ``CosineAnnealingLR`` for t <= T."""

    def __init__(self, optimizer, total_steps, min_lr=0.0):
        self.total_steps = _check_steps("total_steps", total_steps)
        self.min_lr = check_range("min_lr", min_lr, 0.0, kind="schedule")
        super().__init__(optimizer)

    def lr_at(self, step):
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


class OneCycleLR(_Schedule):
    """One cycle as ``torch.optim.lr_scheduler.OneCycleLR`` (cosine annealing, momentum not cycled).

    Warm-up: from ``base_lr / div_factor`` up to ``base_lr`` over the first ``warmup``
    fraction of ``total_steps``; then down to ``base_lr / div_factor / final_div_factor``
    at the last step, both along half a cosine.
    """

    def __init__(self, optimizer, total_steps, warmup=0.3, div_factor=25.0, final_div_factor=1e4):
        self.total_steps = _check_steps("total_steps", total_steps)
        self.warmup = check_range("warmup", warmup, 0.0, 1.0, kind="schedule")
        self.div_factor = check_range("div_factor", div_factor, 1.0, kind="schedule")
        self.final_div_factor = check_range("final_div_factor", final_div_factor, 1.0, kind="schedule")
        self.peak_step = self.warmup * self.total_steps - 1  # torch's phase boundary, a float
        if not 0 < self.peak_step < self.total_steps - 1:
            raise DigitsError(f"schedule setting warmup={warmup} leaves no room for a rise and a fall "
                              f"in {total_steps} steps")
        super().__init__(optimizer)

    def lr_at(self, step):
        if step > self.total_steps:
            raise DigitsError(f"one-cycle schedule stepped {step} times, past its {self.total_steps} steps")
        start = self.base_lr / self.div_factor
        if step <= self.peak_step:
            return self._anneal(start, self.base_lr, step / self.peak_step)
        end = start / self.final_div_factor
        return self._anneal(self.base_lr, end, (step - self.peak_step) / (self.total_steps - 1 - self.peak_step))

    @staticmethod
    def _anneal(start, end, fraction):
        return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)
