"""Agent evaluation on held-out conversations: does the model call the right tools with the right arguments?

For each held-out assistant turn that made tool calls (the first `TOOL_CALL_TURNS`, in file order, so runs are
comparable), the model generates greedily from the conversation so far, rendered with its chat template and
the session's tools exactly as in training; the calls are parsed from its text (`toolcalls`, which documents
the formats read) and scored against the session's. The loss on the same conversations is the Trainer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finetune_trainer.train import chatrender
from finetune_trainer.train.conversation import Conversation, ToolCall, call_json, tool_call_turns, tool_calls
from finetune_trainer.train.evaluation import greedy_continuation
from finetune_trainer.train.toolcalls import ToolCallScores, parse_tool_calls, score_tool_calls

TOOL_CALL_TURNS = 32
MAX_NEW_TOKENS = 256


def turns_to_score(
    conversations: Sequence[Conversation], limit: int = TOOL_CALL_TURNS
) -> list[tuple[Conversation, int]]:
    turns = [(conversation, turn) for conversation in conversations for turn in tool_call_turns(conversation)]
    return turns[:limit]


def evaluate_tool_calls(
    model: Any, tokenizer: Any, conversations: Sequence[Conversation], max_prompt_tokens: int
) -> ToolCallScores:
    pairs: list[tuple[Sequence[ToolCall], Sequence[ToolCall]]] = []
    for conversation, turn in turns_to_score(conversations):
        reference = tool_calls(conversation.messages[turn])
        text = generate_turn(model, tokenizer, conversation, turn, max_prompt_tokens)
        pairs.append((parse_tool_calls(text), reference))
    return score_tool_calls(pairs)


def generate_turn(model: Any, tokenizer: Any, conversation: Conversation, turn: int, max_prompt_tokens: int) -> str:
    """The model's greedy assistant turn `turn`, special tokens kept (some templates' call markers are special)."""
    ids = chatrender.prompt_ids(tokenizer, conversation, turn)[-max_prompt_tokens:]
    message = conversation.messages[turn]
    reference = message["content"] + "".join(call_json(call) for call in tool_calls(message))
    # Room for the reference turn and some slack: an untrained model that never ends its turn must not spend
    # MAX_NEW_TOKENS on every turn.
    budget = min(MAX_NEW_TOKENS, 2 * len(tokenizer(reference, add_special_tokens=False)["input_ids"]) + 16)
    continuation = greedy_continuation(model, tokenizer, ids, budget, stop_tokens(model, tokenizer))
    return str(tokenizer.decode(continuation, skip_special_tokens=False))


def stop_tokens(model: Any, tokenizer: Any) -> list[int]:
    """The tokenizer's EOS and the model's own (instruct models often end a turn with a token other than EOS)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    extra = configured if isinstance(configured, list) else [configured]
    return sorted({tokenizer.eos_token_id, *(token for token in extra if isinstance(token, int))})
