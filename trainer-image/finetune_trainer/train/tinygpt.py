"""`baseModel.builtin: tiny-gpt`: a tiny Llama-style model built offline, for tests and the demo.

No small causal LM with weights can be downloaded here (no model hub), so this one is made from a
config: a byte-level BPE tokenizer (vocab 512) trained on the job's own training split and a
2-layer, 64-wide Llama initialised from the job's seed. It is written to the workspace in Hugging
Face format and then loaded back exactly like a real model (`from_pretrained(local_files_only=True)`),
so the builtin exercises the production loading path. It is built once per workspace (atomically:
temp dir, then rename) so a resumed run starts from the very same weights and vocabulary.

Like instruction-tuned models it ships a chat template (`CHAT_TEMPLATE`, ChatML with tool support in the
Hermes/Qwen style), so chat datasets and agent evaluation run on it: tools are listed in the system turn and
calls are written `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Its end-of-turn token
`<|im_end|>` is also the EOS token, as in Qwen's instruct models, so generation stops at the end of a turn.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

VOCAB_SIZE = 512
EOS = "<|im_end|>"
TURN_START = "<|im_start|>"
PAD = "<|pad|>"
HIDDEN_SIZE = 64
LAYERS = 2
HEADS = 4
MAX_POSITIONS = 4096
# Ten times Llama's 0.02. With LoRA the (tied) output head stays frozen at its random init, and
# at 0.02 it caps the logits near +-1: measured, LoRA then stalled at loss ~5.2 on the test task,
# while at 0.2 it reaches ~2.3 in 15 steps. Pretrained bases do not have this problem.
INIT_STD = 0.2
# {% generation %} marks what the model produces in an assistant turn (its text, tool calls and <|im_end|>),
# which is what chat training puts the loss on (see chatrender).
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "Tools:\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    'Call a tool with <tool_call>{"name": ..., "arguments": {...}}</tool_call>.<|im_end|>\n'
    "{% elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'assistant' %}<|im_start|>assistant\n{% generation %}{{ message.content }}"
    "{% for call in message.tool_calls or [] %}<tool_call>"
    '{{ {"name": call.function.name, "arguments": call.function.arguments} | tojson }}</tool_call>'
    "{% endfor %}<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% elif message.role != 'system' or not loop.first %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def ensure_tiny_gpt(target: Path, corpus: Iterable[str], seed: int) -> Path:
    """Build the model into `target` unless a complete build is already there."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build_tiny_gpt(staging, corpus, seed)
        try:
            staging.rename(target)
        except OSError:
            # Another rank won the race; builds are deterministic, so its copy is ours too.
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_tiny_gpt(folder: Path, corpus: Iterable[str], seed: int) -> None:
    tokenizer = train_tokenizer(corpus)
    tokenizer.save_pretrained(folder)
    # A private generator would not reach the modules' own init calls; seeding the global RNG
    # here is what makes two builds from the same seed bit-identical.
    torch.manual_seed(seed)
    model = LlamaForCausalLM(model_config(tokenizer))
    model.save_pretrained(folder)


def model_config(
    tokenizer: PreTrainedTokenizerFast,
    hidden_size: int = HIDDEN_SIZE,
    layers: int = LAYERS,
    heads: int = HEADS,
    tied_embeddings: bool = True,
) -> LlamaConfig:
    """tiny-gpt's Llama config for `tokenizer`; larger sizes serve the benchmarks (bench/trainer)."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=tied_embeddings,
        initializer_range=INIT_STD,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def train_tokenizer(corpus: Iterable[str]) -> PreTrainedTokenizerFast:
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS, PAD, TURN_START],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=EOS, pad_token=PAD, additional_special_tokens=[TURN_START]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
