"""Curation: agent-session logs -> a clean, traceable instruction dataset (train/eval JSONL + manifest).

Run as `python -m finetune_trainer.curate`. Must not import torch or
transformers: it runs in a CPU-only step and has to start fast.
"""

# Bumped whenever a curation rule changes what is kept or how it is written,
# so a manifest tells which rules produced a dataset.
CURATOR_VERSION = "1.0.0"
