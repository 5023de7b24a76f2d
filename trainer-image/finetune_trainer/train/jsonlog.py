"""Structured logs: one JSON object per line on stdout, for the pod's log and any log pipeline.

Library chatter (transformers, TRL, PEFT) goes through the same formatter at WARNING and above;
their progress bars are switched off because carriage-return bars interleave with JSON lines.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

EVENT_LOGGER = "finetune_trainer.events"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(rank: int) -> None:
    import transformers

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Non-zero ranks repeat rank 0's story; only their warnings are worth a line.
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    # Python warnings (deprecations from the libraries) become JSON lines too, not raw stderr text.
    logging.captureWarnings(True)
    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()


def event(name: str, **fields: Any) -> None:
    """Log one structured event, e.g. event("train_log", step=10, loss=2.3)."""
    logging.getLogger(EVENT_LOGGER).info(name, extra={"fields": {"event": name, **fields}})
