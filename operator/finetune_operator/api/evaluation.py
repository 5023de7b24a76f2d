"""How a trained model is judged before it is registered: evaluation during training, early stopping, and the
gates (a loss bound, a comparison with the version an alias names)."""

from __future__ import annotations

from pydantic import Field, model_validator

from finetune_operator.api.base import DNS1123_LABEL_PATTERN, ApiModel, cel


class EarlyStoppingSpec(ApiModel):
    """End training once the eval loss stopped improving; the best checkpoint becomes the model."""

    patience: int = Field(default=3, ge=1, le=100)
    """Evaluations without an improvement before training stops."""
    min_delta: float = Field(default=0.0, ge=0.0)
    """How much lower the eval loss must be to count as an improvement."""


class CompareToSpec(ApiModel):
    """A gate against a registered version, measured on this job's held-out split."""

    model: str | None = Field(default=None, pattern=DNS1123_LABEL_PATTERN, max_length=63)
    """The registered model whose alias is compared against; default: output.modelName."""
    alias: str = Field(default="champion", pattern=DNS1123_LABEL_PATTERN, max_length=63)
    """The alias of that model's RegisteredModel naming the version to beat, resolved when training starts. An
    alias not set yet (or no RegisteredModel: the model's first job) skips the gate, and the job says so."""
    max_regression: float = Field(default=0.0, ge=0.0, le=100.0)
    """How much higher than the alias's version's loss the new model's may be (0: no worse)."""


class EvaluationSpec(ApiModel):
    """Evaluation during training, early stopping, and the gate a trained model must pass to be registered."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.earlyStopping) || has(self.evalsPerEpoch)",
                    "evaluation.earlyStopping needs evaluation.evalsPerEpoch (it acts on those evaluations)",
                )
            ]
        }
    }

    max_eval_loss: float | None = Field(default=None, gt=0.0)
    """The job completes only if the held-out loss is at most this value (> 0)."""
    min_tool_call_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    """The job completes only if, on the held-out conversations' assistant turns that called tools, the model
    generates calls to the right functions at least this often (status.metrics.toolCallAccuracy, 0..1). Needs a
    chat dataset with tool calls in its held-out split (curation decides the format, so this is checked when
    training starts: without held-out tool calls the job fails EvaluationGateFailed before training)."""
    evals_per_epoch: int | None = Field(default=None, ge=1, le=100)
    """Evaluate on the held-out split this many times per epoch (an eval-loss curve); unset: once, at the end."""
    early_stopping: EarlyStoppingSpec | None = None
    compare_to: CompareToSpec | None = None
    """After training, evaluate the new model and the version an alias names on this job's held-out split; the
    job completes only if the new one is no worse than allowed, else fails RegressedAgainstChampion (the model
    stays in the workspace). Both losses go to status.metrics and the ModelVersion."""

    @model_validator(mode="after")
    def _early_stopping_needs_evaluations(self) -> EvaluationSpec:
        if self.early_stopping is not None and self.evals_per_epoch is None:
            raise ValueError("evaluation.earlyStopping needs evaluation.evalsPerEpoch (it acts on those evaluations)")
        return self
