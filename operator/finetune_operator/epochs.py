"""One Event per finished epoch ("epoch 2/3: loss 1.23, eval loss 1.41"), from the trainer's progress reports.

The operator sees each report on its FineTuningJob watch anyway; when the whole-epoch count of `progress.epoch`
grows it posts an Event, at most MAX_PER_JOB per job so that a 1,000-epoch run cannot spend the write budget.
A job seen for the first time (a restart) only sets the mark: a restarted operator never repeats an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_PER_JOB = 5
REASON = "EpochFinished"


def message(epoch: int, epochs: int | None, metrics: Mapping[str, Any]) -> str:
    parts = [f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"]
    figures = [(label, metrics.get(key)) for key, label in (("trainLoss", "loss"), ("evalLoss", "eval loss"))]
    shown = ", ".join(f"{label} {value:.4g}" for label, value in figures if isinstance(value, int | float))
    return f"{parts[0]}: {shown}" if shown else parts[0]


@dataclass
class EpochEvents:
    marks: dict[str, int] = field(default_factory=dict)  # uid -> whole epochs already accounted for
    posted: dict[str, int] = field(default_factory=dict)

    def observe(self, uid: str, body: Mapping[str, Any]) -> str | None:
        """The Event message to post for this watch event of a job, if an epoch just finished."""
        status = body.get("status") or {}
        progress = status.get("progress") or {}
        epoch = progress.get("epoch")
        # The last epoch ends as evaluation begins: its report already says Evaluating.
        if not isinstance(epoch, int | float) or progress.get("stage") not in ("Training", "Evaluating"):
            return None
        whole = math.floor(epoch + 1e-6)
        mark = self.marks.get(uid)
        self.marks[uid] = max(whole, mark or 0)
        if mark is None or whole <= mark or self.posted.get(uid, 0) >= MAX_PER_JOB:
            return None
        self.posted[uid] = self.posted.get(uid, 0) + 1
        epochs = ((body.get("spec") or {}).get("training") or {}).get("epochs")
        return message(whole, epochs if isinstance(epochs, int) else None, status.get("metrics") or {})

    def forget(self, uid: str) -> None:
        self.marks.pop(uid, None)
        self.posted.pop(uid, None)
