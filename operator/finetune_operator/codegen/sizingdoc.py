"""The sizing table of docs/trainer.md: per-GPU memory of Llama 3.1 8B and 70B jobs, computed by the memory plan.

The same function the trainer runs before loading weights (`finetune_operator.api.memoryplan.estimate`), so the
table cannot disagree with what the trainer refuses; `crdgen --check` fails when either drifts.
"""

from __future__ import annotations

from dataclasses import replace

from finetune_operator.api.memoryplan import GIB, MemoryEstimate, TrainingPlan, estimate
from finetune_operator.api.modelshape import LLAMA_3_1_8B, LLAMA_3_1_70B, shape_from_config
from finetune_operator.api.training import Quantization, TrainingMethod

SEQ_LENGTH = 4096
MICRO_BATCH = 1
# An 80 GB H100 as torch.cuda.mem_get_info reports it (81,559 MiB).
H100_BYTES = 81_559 * 1024**2
MODELS = (("Llama 3.1 8B", LLAMA_3_1_8B), ("Llama 3.1 70B", LLAMA_3_1_70B))
METHODS = (
    ("lora", TrainingMethod.LORA, Quantization.NONE),
    ("lora, 8bit", TrainingMethod.LORA, Quantization.EIGHT_BIT),
    ("qlora (lora, 4bit)", TrainingMethod.LORA, Quantization.FOUR_BIT),
    ("full", TrainingMethod.FULL, Quantization.NONE),
)
# Sharded over 8 GPUs (one node) and 16 (two); quantized weights are not sharded by this trainer.
SHARDED_GPUS = (8, 16)


def sizing_table() -> str:
    rows = [
        f"Per-GPU memory by the plan: bf16, `maxSeqLength: {SEQ_LENGTH}`, `batchSize: {MICRO_BATCH}`, activation "
        "checkpointing on, LoRA r=16 on every linear layer. With `sharding: none` every GPU holds all of the model "
        "(the ranks replicate it), so the figure is the same on 1, 8 or 16 GPUs; with `sharding: fsdp` each of N "
        "GPUs holds 1/N of the weights, gradients and optimizer state plus FSDP's working set (two gathered layers "
        "and the embeddings in bf16, one layer's fp32 gradients); the model loads sharded too (rank 0 reads it into "
        "host memory and broadcasts it tensor by tensor, each GPU keeping its shard), so no GPU ever holds all of it. "
        '"fits" means within an 80 GB H100 '
        f"({H100_BYTES / GIB:.1f} GiB).",
        "",
        "| model | method | GPUs | sharding | per GPU | weights | optimizer + gradients | activations | 80 GB GPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model_name, shape_config in MODELS:
        shape = shape_from_config(shape_config)
        for method_name, method, quantization in METHODS:
            plan = TrainingPlan(
                method=method,
                quantization=quantization,
                seq_length=SEQ_LENGTH,
                micro_batch=MICRO_BATCH,
                gradient_checkpointing=True,
                precision="bf16",
            )
            rows.append(_row(model_name, method_name, "1, 8 or 16", "none", estimate(shape, plan)))
            if quantization is Quantization.NONE:
                for gpus in SHARDED_GPUS:
                    needed = estimate(shape, replace(plan, shards=gpus, ranks=gpus))
                    rows.append(_row(model_name, method_name, str(gpus), "fsdp", needed))
    return "\n".join(rows)


def _row(model_name: str, method_name: str, gpus: str, sharding: str, needed: MemoryEstimate) -> str:
    verdict = "fits" if needed.total <= H100_BYTES else "**does not fit**"
    figures = [needed.total, needed.weights, needed.optimizer + needed.gradients, needed.activations]
    cells = " | ".join(f"{value / GIB:.1f} GiB" for value in figures)
    return f"| {model_name} | {method_name} | {gpus} | {sharding} | {cells} | {verdict} |"
