"""Conversations rendered with the model's chat template, labelled on exactly the assistant turns.

The loss is on every assistant turn (its text, its tool calls and its end-of-turn token) and on nothing the
model does not produce: system, user and tool messages, the tool definitions, and each assistant header
(`<|im_start|>assistant\\n`, which the generation prompt supplies at inference).

Where the template marks assistant text with `{% generation %}` the tokenizer reports those tokens itself.
Otherwise each assistant turn is found by rendering prefixes: messages[:i] with the generation prompt, then
messages[:i+1]; the turn is the text between them, less trailing whitespace (the glue between turns, such
as ChatML's newline after `<|im_end|>`, which generation never produces: it stops at the end-of-turn token).
That needs the prefix property: each render is a prefix of the next and of the whole conversation. A template
that breaks it (one that renders earlier turns differently once later ones exist, e.g. dropping an earlier
turn's reasoning) cannot be labelled this way, and training fails with a message saying so instead of
training on misplaced labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train.collate import IGNORE_INDEX
from finetune_trainer.train.conversation import Conversation

GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class Rendered:
    input_ids: list[int]
    labels: list[int]
    """IGNORE_INDEX except on assistant tokens, where it is the token."""


def require_template(tokenizer: Any, model_dir: object) -> None:
    """A chat dataset needs the base model's chat template: there is no faithful way to invent one (the model
    would be trained on a format its serving stack does not render)."""
    if not getattr(tokenizer, "chat_template", None):
        raise JobFailed(
            Reason.CHAT_TEMPLATE_MISSING,
            f"the dataset is in chat format but the tokenizer in {model_dir} has no chat template "
            "(tokenizer_config.json chat_template or chat_template.jinja): use a chat (instruct) base model, "
            "add a template to this one, or curate with spec.dataset.curation.format: instruction",
        )


def render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], tools: Any, *, generation_prompt: bool) -> str:
    return str(
        tokenizer.apply_chat_template(
            [dict(message) for message in messages],
            tools=tools,
            tokenize=False,
            add_generation_prompt=generation_prompt,
        )
    )


def prompt_ids(tokenizer: Any, conversation: Conversation, turn: int) -> list[int]:
    """The tokens the model sees before assistant message `turn`: what it generates that turn from."""
    text = render(tokenizer, conversation.messages[:turn], conversation.tool_definitions, generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def render_with_labels(tokenizer: Any, conversation: Conversation) -> Rendered:
    if GENERATION_MARKER.search(tokenizer.chat_template):
        return marked(tokenizer, conversation)
    text, spans = assistant_spans(tokenizer, conversation)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = [
        token if any(start <= offset[0] < end for start, end in spans) else IGNORE_INDEX
        for token, offset in zip(ids, encoded["offset_mapping"], strict=True)
    ]
    return Rendered(ids, labels)


def marked(tokenizer: Any, conversation: Conversation) -> Rendered:
    encoded = tokenizer.apply_chat_template(
        [dict(message) for message in conversation.messages],
        tools=conversation.tool_definitions,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids = list(encoded["input_ids"])
    mask = list(encoded["assistant_masks"])
    return Rendered(ids, [token if bit else IGNORE_INDEX for token, bit in zip(ids, mask, strict=True)])


def assistant_spans(tokenizer: Any, conversation: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The whole rendered conversation and the character spans of its assistant turns."""
    messages, tools = conversation.messages, conversation.tool_definitions
    full = render(tokenizer, messages, tools, generation_prompt=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:index], tools, generation_prompt=True) if index else ""
        through = render(tokenizer, messages[: index + 1], tools, generation_prompt=False)
        if not through.startswith(before) or not full.startswith(through):
            raise JobFailed(
                Reason.INVALID_MODEL,
                f"the base model's chat template renders the conversation up to message {index} differently from "
                "the start of the whole conversation, so the assistant turns cannot be found by rendering prefixes; "
                "mark assistant text with {% generation %} ... {% endgeneration %} in the template",
            )
        end = len(through.rstrip())
        if end > len(before):
            spans.append((len(before), end))
    return full, spans
