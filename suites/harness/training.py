"""How a trained run stopped: one stopping rule and one training record for every suite.

Every run that trains a model returns, among its metrics, the record of `TrainingRecord.metrics`:

- `stop_reason`: the index in `STOP_REASONS` of what ended training:
  `converged` - the suite's stopping rule ended it (patience on a validation or training metric,
  or the paper's own fixed budget completed, when the paper fixes one);
  `cap` - a safety cap on steps ended it before the rule fired (the run was still improving);
  `budget` - a deliberately reduced fixed budget ended it (a profile smaller than the paper's rule);
  `diverged` - the loss became NaN/inf (the runner also marks such a row `status=diverged`);
- `train_steps`: checks (epochs, or evaluations every k updates) the run made;
- `best_step`: the check whose model is reported (the best by the rule's metric);
- `last_improvement`: the last check that improved on the best by more than the rule's min_delta.

A claim about trained models declares the evidence its runs need (`Claim.evidence`): `converged`
(every run behind it stopped by its rule, or diverged, which is an outcome and never drops out) or
`target` (every run reached the target the claim is about: metric `reached_target` = 1). The judge
gives a decided verdict only when every run behind the claim meets it (see judge.evidence_of).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .core import Claim

STOP_REASONS = ("converged", "cap", "budget", "diverged")
EVIDENCE = ("converged", "target")
RECORD_METRICS = ("stop_reason", "train_steps", "best_step", "last_improvement")
REACHED_TARGET = "reached_target"


def stop_reason_name(code: float) -> str:
    """The name of a `stop_reason` metric value ("unknown" for a code this version does not know)."""
    index = int(code) if math.isfinite(code) else -1
    return STOP_REASONS[index] if 0 <= index < len(STOP_REASONS) else "unknown"


@dataclass(frozen=True)
class TrainingRecord:
    """How one run stopped, and the numbers behind it (see the module docstring)."""

    stop_reason: str
    train_steps: int
    best_step: int
    last_improvement: int

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason {self.stop_reason!r} is not one of {STOP_REASONS}")

    def metrics(self) -> dict[str, float]:
        return {
            "stop_reason": float(STOP_REASONS.index(self.stop_reason)),
            "train_steps": float(self.train_steps),
            "best_step": float(self.best_step),
            "last_improvement": float(self.last_improvement),
        }

    @classmethod
    def fixed_budget(cls, steps: int, rule_steps: int) -> TrainingRecord:
        """A run trained for a fixed number of steps: `converged` when that is the paper's own
        budget (`rule_steps`, the stopping rule of a paper that fixes its epochs), else `budget`."""
        reason = "converged" if steps >= rule_steps else "budget"
        return cls(reason, steps, steps, steps)


class EarlyStopping:
    """Patience on a monitored value: stop once it has gone `patience` checks without improving on
    the best so far by more than `min_delta` (absolute, as Keras' EarlyStopping counts it), or when
    `cap` checks have been made (then the record says `cap`, unless the rule fired at that check).

    `mode` is "min" for a loss, "max" for accuracy, BLEU or recall. Call `update(value)` once per
    check; it returns True when training should stop. `improved` says whether the last check set a
    new best (keep that model: it is the one the rule reports).
    """

    def __init__(self, patience: int, min_delta: float = 0.0, mode: str = "min", cap: int | None = None) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 (got {patience})")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max' (got {mode!r})")
        self.patience, self.min_delta, self.mode, self.cap = patience, min_delta, mode, cap
        self.best = math.inf if mode == "min" else -math.inf
        self.checks = self.best_step = self.last_improvement = 0
        self.improved = self.converged = False

    def _better(self, value: float, than: float, by: float) -> bool:
        return value < than - by if self.mode == "min" else value > than + by

    def update(self, value: float) -> bool:
        self.checks += 1
        if self._better(value, self.best, self.min_delta):
            self.last_improvement = self.checks
        self.improved = self._better(value, self.best, 0.0)
        if self.improved:
            self.best, self.best_step = value, self.checks
        self.converged = self.checks - self.last_improvement >= self.patience
        return self.converged or (self.cap is not None and self.checks >= self.cap)

    def record(self) -> TrainingRecord:
        reason = "converged" if self.converged else "cap"
        return TrainingRecord(reason, self.checks, self.best_step, self.last_improvement)


def meets(requirement: str, metrics: Mapping[str, float], status: str) -> tuple[bool, str]:
    """Whether one run meets a claim's evidence requirement, and, when not, why (a short word)."""
    if status == "diverged":
        return True, "diverged"
    if requirement == "target":
        reached = metrics.get(REACHED_TARGET)
        if reached is None:
            return False, "no target record"
        return (reached > 0, "target reached" if reached > 0 else "target not reached")
    code = metrics.get("stop_reason")
    if code is None:
        return False, "no training record"
    name = stop_reason_name(code)
    return name in ("converged", "diverged"), name


def evidence_of(claim: Claim, frame: pd.DataFrame) -> dict[str, Any] | None:
    """Whether the runs behind a claim about trained models meet its evidence requirement.

    The runs are the cells (treatment and baseline sides) that hold the claim's metric; each must
    meet `claim.evidence` by its own training record (training.meets). Returns None for claims that
    need no evidence, else {"required", "runs", "met", "short": {reason: count}}.
    """
    from .selection import CELL, select

    if claim.evidence is None or frame.empty:
        return None
    rows = frame[(frame["experiment"] == claim.experiment) & frame["status"].isin(["ok", "diverged"])]
    measured = rows[rows["metric"] == claim.metric]
    sides = [select(measured, f) for f in (claim.treatment, claim.baseline) if f is not None]
    cells = pd.concat(sides)[[*CELL, "status"]].drop_duplicates(CELL)
    records = rows[rows["metric"].isin([*RECORD_METRICS, REACHED_TARGET])]
    by_cell = {key: dict(zip(g["metric"], g["value"], strict=True)) for key, g in records.groupby(CELL)}
    short: dict[str, int] = {}
    met = 0
    for cell in cells.itertuples(index=False):
        ok, why = meets(claim.evidence, by_cell.get(tuple(getattr(cell, c) for c in CELL), {}), cell.status)
        met += ok
        if not ok:
            short[why] = short.get(why, 0) + 1
    return {"required": claim.evidence, "runs": len(cells), "met": met, "short": short}


def evidence_text(evidence: Mapping[str, Any] | None) -> str:
    """'converged 6/6' or 'converged 2/6 (cap 4)' for reports; '-' for claims that need none or have no runs."""
    if not evidence or not evidence["runs"]:
        return "-"
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(evidence["short"].items()))
    return f"{evidence['required']} {evidence['met']}/{evidence['runs']}" + (f" ({why})" if why else "")
