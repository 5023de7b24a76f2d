"""Counting tokens for `maxTokens`.

The target model's tokenizer is usually not available to the curation step
(it runs before, and apart from, the model download). The default estimate is
one token per 4 UTF-8 bytes, rounded up (computed in finetune_curate_native):
close to what byte-level BPE tokenizers (GPT-2/Llama 3 style) produce on
English prose and code, an under-count for non-Latin scripts. When a
`tokenizer.json` is available (the job's base model on a PVC, or --tokenizer),
it is used instead; the `tokenizers` library is imported only then, so the
common path stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from finetune_curate_native import BYTES_PER_TOKEN

TokenCounter = Callable[[str], int]


def tokenizer_counter(path: Path) -> TokenCounter:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def describe(path: Path | None) -> str:
    return f"tokenizer:{path}" if path else f"estimate:utf8-bytes/{BYTES_PER_TOKEN}"
