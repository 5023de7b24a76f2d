"""The trainer: supervised fine-tuning of a causal LM (LoRA or full) on the curated dataset.

Entry point: `python -m finetune_trainer.train [--config $FINETUNE_CONFIG]`.
"""
