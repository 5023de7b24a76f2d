"""What the held-out split says about the trained model beyond its loss, and the gates on those figures.

Instruction datasets: a few eval samples answered greedily, scored by exact match and token F1 (`evaluation`).
Chat datasets: the held-out assistant turns that called tools, regenerated and scored by function name and
arguments (`agenteval`); exact match and token F1 are not computed for them (a turn is mostly tool calls, which
those text scores would judge as prose).

The gates: evaluation.maxEvalLoss and evaluation.minToolCallAccuracy. Every failing gate is named in the one
EvaluationGateFailed message, with its figure and bound. minToolCallAccuracy needs held-out tool calls; the
format is decided by curation (not known when the job is applied), so that is checked when training starts
(`check_applicable`), where it costs nothing, rather than after the whole training run.
"""

from __future__ import annotations

from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import agenteval, data, evaluation
from finetune_trainer.train.config import TrainConfig
from finetune_trainer.train.conversation import has_tool_call_turns

Figures = dict[str, float | int]


def check_applicable(config: TrainConfig, dataset: data.Dataset) -> None:
    if config.min_tool_call_accuracy is None or has_tool_call_turns(data.conversations(dataset.eval)):
        return
    raise JobFailed(
        Reason.EVALUATION_GATE_FAILED,
        f"evaluation.minToolCallAccuracy is set but the held-out split ({dataset.format} format, "
        f"{len(dataset.eval)} samples) has no assistant turn with tool calls to score: curate sessions with tool "
        "calls in chat format (spec.dataset.curation.format: chat), or remove the gate",
    )


def generation_metrics(model: Any, tokenizer: Any, dataset: data.Dataset, max_prompt_tokens: int) -> Figures:
    if dataset.format == data.CHAT:
        conversations = data.conversations(dataset.eval)
        scores = agenteval.evaluate_tool_calls(model, tokenizer, conversations, max_prompt_tokens)
        return scores.metrics() if scores.calls else {}
    samples = data.instruction_samples(dataset.eval)[: evaluation.GENERATION_SAMPLES]
    answers = evaluation.generate(model, tokenizer, samples, max_prompt_tokens=max_prompt_tokens)
    scores_text = evaluation.score(answers, [sample.output for sample in samples])
    return {"evalExactMatch": round(scores_text.exact_match, 4), "evalTokenF1": round(scores_text.token_f1, 4)}


def failed_gates(config: TrainConfig, eval_loss: float, metrics: Figures) -> list[str]:
    """One line per failing gate, naming the figure and the bound; empty when every gate passed."""
    failed = []
    if config.max_eval_loss is not None and not eval_loss <= config.max_eval_loss:  # NaN fails too
        failed.append(f"evalLoss {eval_loss:.4f} > maxEvalLoss {config.max_eval_loss}")
    bound = config.min_tool_call_accuracy
    if bound is not None:
        accuracy = float(metrics.get("toolCallAccuracy", 0.0))
        arguments = float(metrics.get("toolCallArgumentsMatch", 0.0))
        if accuracy < bound:
            failed.append(
                f"toolCallAccuracy {accuracy:.4f} < minToolCallAccuracy {bound} (held-out calls: "
                f"{metrics.get('toolCallsScored', 0)}, arguments match {arguments:.4f})"
            )
    return failed


def check_gates(config: TrainConfig, eval_loss: float, metrics: Figures) -> None:
    failed = failed_gates(config, eval_loss, metrics)
    if failed:
        raise JobFailed(Reason.EVALUATION_GATE_FAILED, "; ".join(failed))
