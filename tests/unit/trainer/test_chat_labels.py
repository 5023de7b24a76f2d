"""Chat samples at token level: rendered with the model's template, labelled on exactly the assistant turns."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import chatrender, data, tinygpt
from finetune_trainer.train.collate import IGNORE_INDEX
from finetune_trainer.train.conversation import Conversation, parse_conversation
from finetune_trainer.train.modelio import load_tokenizer

from .chatdata import TOOLS, write_records

CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "What is the weather in Oslo?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "c1"},
    {"role": "assistant", "content": "Oslo: sunny."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]
CONVERSATION = Conversation(tuple(MESSAGES), tuple(TOOLS))

# Qwen2.5-Instruct's template as published (tools in the system turn, Hermes-style <tool_call> blocks, tool results
# grouped into a user turn), without {% generation %} markers: labelled by rendering prefixes.
QWEN25_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""  # noqa: E501


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    corpus = [data.sample_text(CONVERSATION)] * 4
    folder = tinygpt.ensure_tiny_gpt(tmp_path_factory.mktemp("chat") / "tiny", corpus, seed=1)
    return load_tokenizer(folder)


def labelled_runs(tokenizer: Any, rendered: chatrender.Rendered) -> list[str]:
    """The decoded runs of consecutive labelled tokens."""
    runs = itertools.groupby(zip(rendered.input_ids, rendered.labels, strict=True), key=lambda p: p[1] != IGNORE_INDEX)
    return [tokenizer.decode([token for token, _ in run]) for labelled, run in runs if labelled]


def test_builtin_template_labels_exactly_the_assistant_turns(tokenizer: Any) -> None:
    assert chatrender.GENERATION_MARKER.search(tokenizer.chat_template)  # the {% generation %} path
    rendered = chatrender.render_with_labels(tokenizer, CONVERSATION)
    text = tokenizer.decode(rendered.input_ids)
    assert text == chatrender.render(tokenizer, MESSAGES, list(TOOLS), generation_prompt=False)
    assert '"name": "get_weather"' in text and "You are a coding agent." in text  # tools and system are rendered
    assert labelled_runs(tokenizer, rendered) == [
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call><|im_end|>',
        "Oslo: sunny.<|im_end|>",
        "You are welcome.<|im_end|>",
    ]
    assert all(label in (IGNORE_INDEX, token) for token, label in zip(rendered.input_ids, rendered.labels, strict=True))


def test_prefix_rendering_agrees_with_the_generation_markers(tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    marked = chatrender.render_with_labels(tokenizer, CONVERSATION)
    unmarked = tinygpt.CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    monkeypatch.setattr(tokenizer, "chat_template", unmarked)
    assert chatrender.render_with_labels(tokenizer, CONVERSATION) == marked


def test_qwen_style_template_labels_exactly_the_assistant_turns(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenizer, "chat_template", QWEN25_TEMPLATE)
    rendered = chatrender.render_with_labels(tokenizer, CONVERSATION)
    text = tokenizer.decode(rendered.input_ids)
    assert "<tool_response>\nsunny, 21 C\n</tool_response>" in text and "# Tools" in text
    assert labelled_runs(tokenizer, rendered) == [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>',
        "Oslo: sunny.<|im_end|>",
        "You are welcome.<|im_end|>",
    ]
    prompt = tokenizer.decode(chatrender.prompt_ids(tokenizer, CONVERSATION, 2))
    assert prompt.endswith("What is the weather in Oslo?<|im_end|>\n<|im_start|>assistant\n")


def test_a_template_that_rewrites_earlier_turns_fails_clearly(tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Like templates that drop earlier turns' reasoning: the last assistant turn renders differently.
    rewriting = (
        "{% for message in messages %}<|im_start|>{{ message.role }}\n"
        "{% if loop.last %}[final] {% endif %}{{ message.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    monkeypatch.setattr(tokenizer, "chat_template", rewriting)
    with pytest.raises(JobFailed) as failure:
        chatrender.render_with_labels(tokenizer, CONVERSATION)
    assert failure.value.reason == Reason.INVALID_MODEL
    assert "{% generation %}" in failure.value.message


def test_a_model_without_chat_template_fails_with_chat_template_missing(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenizer, "chat_template", None)
    with pytest.raises(JobFailed) as failure:
        chatrender.require_template(tokenizer, "/models/base")
    assert failure.value.reason == Reason.CHAT_TEMPLATE_MISSING
    assert "/models/base" in failure.value.message and "format: instruction" in failure.value.message


def test_chat_datasets_are_read_by_the_manifest_format(tmp_path: Path) -> None:
    record = {"messages": MESSAGES, "tools": TOOLS, "metadata": {"session_id": "s"}}
    write_records(tmp_path, [record], [record], "chat")
    dataset = data.load_dataset(tmp_path / "dataset")
    assert dataset.format == data.CHAT
    assert dataset.train == [CONVERSATION] and data.provenance(dataset)["format"] == "chat"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"messages": MESSAGES[:-1]}, "does not end with an assistant message"),
        ({"messages": [*MESSAGES[:2], {**MESSAGES[2], "name": "x"}, *MESSAGES[3:]]}, "unexpected keys ['name']"),
        ({"messages": [{"role": "user", "content": None}, MESSAGES[-1]]}, "'content' must be a string"),
        ({"messages": [{"role": "tool", "content": "x"}, MESSAGES[-1]]}, "needs a string 'tool_call_id'"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{}"}}],
                    }
                ]
            },
            "must be parsed JSON",
        ),
        ({"tools": "get_weather"}, "'tools' must be a list"),
    ],
)
def test_records_that_break_the_contract_fail_curation(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(JobFailed) as failure:
        parse_conversation({"messages": MESSAGES, **change}, "train.jsonl:3")
    assert failure.value.reason == Reason.CURATION_FAILED
    assert failure.value.message.startswith("train.jsonl:3: ") and complaint in failure.value.message
