"""The gate against the current champion (spec.evaluation.compareTo), on this job's held-out split.

The operator resolves the alias when training starts and hands the version over in `FINETUNE_CHAMPION`, with its
claim mounted read-only. After training, rank 0 measures the new model and the champion on the same batches the
same way (summed token cross-entropy over every label token, divided by their count), so the two figures differ
only by the weights; the Trainer's own eval loss averages per batch and is reported beside, not compared. The
champion must read this job's tokens exactly as this job's tokenizer writes them: another vocabulary would make
the losses incomparable, and is refused (ChampionUnavailable) instead of compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import ValidationError

from finetune_operator.api.contract import Reason
from finetune_operator.api.jobconfig import CHAMPION_ENV, Champion
from finetune_trainer.failures import JobFailed
from finetune_trainer.train.collate import IGNORE_INDEX, PackedRowsCollator
from finetune_trainer.train.config import TrainConfig
from finetune_trainer.train.modelio import load_model, load_tokenizer
from finetune_trainer.train.output import MERGED_DIR

_ROW_FIELDS = ("input_ids", "labels", "seq_lengths")


@dataclass(frozen=True)
class Comparison:
    champion: Champion
    candidate_loss: float
    champion_loss: float

    @property
    def passed(self) -> bool:
        return self.candidate_loss <= self.champion_loss + self.champion.max_regression

    def metrics(self) -> dict[str, float]:
        return {"candidateEvalLoss": round(self.candidate_loss, 6), "championEvalLoss": round(self.champion_loss, 6)}

    def message(self) -> str:
        c = self.champion
        return (
            f"evalLoss {self.candidate_loss:.4f} on this job's held-out split is worse than {c.model} {c.version} "
            f"(alias {c.alias}) at {self.champion_loss:.4f} by more than maxRegression {c.max_regression}"
        )


def from_environment(environ: Mapping[str, str]) -> Champion | None:
    text = environ.get(CHAMPION_ENV)
    if not text:
        return None
    try:
        return Champion.model_validate_json(text)
    except ValidationError as error:
        raise JobFailed(Reason.INVALID_CONFIGURATION, f"{CHAMPION_ENV} is not a champion: {error}") from error


def token_loss(model: Any, batches: Iterable[Mapping[str, torch.Tensor]]) -> float:
    """Mean cross-entropy over every label token of `batches` (next-token prediction, -100 ignored)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in batches:
            logits = model(
                input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device)
            ).logits
            targets = batch["labels"][:, 1:].to(device)
            predicted = logits[:, :-1].float()
            total += F.cross_entropy(
                predicted.reshape(-1, predicted.shape[-1]),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            ).item()
            count += int((targets != IGNORE_INDEX).sum().item())
    if count == 0:
        raise JobFailed(Reason.CHAMPION_UNAVAILABLE, "the held-out split has no label tokens to compare on")
    return total / count


def eval_batches(rows: Iterable[Mapping[str, Any]], pad_token_id: int, batch_size: int) -> list[dict[str, Any]]:
    """The tokenized held-out rows as the models see them, rows kept apart (any attention kernel reads them)."""
    collate = PackedRowsCollator(pad_token_id)
    plain = [{key: row[key] for key in _ROW_FIELDS if row.get(key) is not None} for row in rows]
    return [collate(plain[start : start + batch_size]) for start in range(0, len(plain), batch_size)]


def weights_folder(champion: Champion, tokenizer: Any) -> Path:
    """The champion's model folder, checked before training: readable, and reading this job's tokens the same way."""
    folder = Path(champion.path)
    named = f"{champion.model} {champion.version} ({champion.model_version})"
    if not folder.is_dir():
        raise JobFailed(Reason.CHAMPION_UNAVAILABLE, f"{named}: its model folder {folder} is not readable")
    merged = folder / MERGED_DIR
    weights = merged if champion.adapter and merged.is_dir() else folder
    try:
        theirs = load_tokenizer(weights)
    except JobFailed as error:
        raise JobFailed(Reason.CHAMPION_UNAVAILABLE, f"{named}: {error.message}") from error
    if theirs.get_vocab() != tokenizer.get_vocab():
        raise JobFailed(Reason.CHAMPION_UNAVAILABLE, f"{named} uses another tokenizer: its losses would not compare")
    return weights


def load_champion(champion: Champion, weights: Path, base_model_dir: Path, config: TrainConfig) -> Any:
    """The champion's model; an adapter without a merged copy goes on this job's base model (same base: operator)."""
    device = "cuda:0" if torch.cuda.is_available() else None
    if not champion.adapter or weights.name == MERGED_DIR:
        return load_model(weights, config, device=device)
    from peft import PeftModel

    return PeftModel.from_pretrained(load_model(base_model_dir, config, device=device), str(weights))


def compare(
    champion: Champion, weights: Path, candidate: Any, rows: Iterable[Mapping[str, Any]], base_model_dir: Path,
    config: TrainConfig, pad_token_id: int,
) -> Comparison:  # fmt: skip
    batches = eval_batches(rows, pad_token_id, config.batch_size)
    candidate_loss = token_loss(candidate, batches)
    model = load_champion(champion, weights, base_model_dir, config)
    champion_loss = token_loss(model, batches)
    del model
    return Comparison(champion, candidate_loss, champion_loss)


def describe(comparison: Comparison) -> dict[str, object]:
    """The `comparedTo` block of the termination message and the ModelVersion."""
    c = comparison.champion
    return {"model": c.model, "alias": c.alias, "version": c.version, "maxRegression": c.max_regression}
