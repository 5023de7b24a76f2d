"""One rank's dataset preparation, as `run` does it: `python prepare_worker.py WORKSPACE MODEL_DIR RANK`.

Prints the packed training rows and the files backing them, as JSON (test_prepared.py).
"""

import json
import sys
from pathlib import Path

from finetune_operator.api import JobConfig
from finetune_trainer.train import data, prepared, run
from finetune_trainer.train.config import Device, resolve
from finetune_trainer.train.modelio import load_model, load_tokenizer

if __name__ == "__main__":
    workspace, model_dir, rank = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    job = JobConfig.load(workspace / "job.json")
    dataset = data.load_dataset(workspace / "dataset")
    device = Device(cuda_devices=0, bf16_supported=False)
    config = resolve(job.spec, base_model_path=None, dataset_sha256=dataset.sha256, device=device)
    records = {
        "train": [data.to_record(sample, chat=False) for sample in dataset.train],
        "eval": [data.to_record(sample, chat=False) for sample in dataset.eval],
    }
    splits = prepared.file_backed(prepared.folder(workspace, config.config_hash), records, rank, timeout=60)
    trainer = run.build_trainer(
        model=load_model(model_dir, config),
        tokenizer=load_tokenizer(model_dir),
        config=config,
        train=splits["train"],
        evaluation_records=splits["eval"],
        output_dir=workspace / f"out-{rank}",
        callbacks=[],
    )
    rows = [list(row["input_ids"]) for row in trainer.train_dataset]
    print(json.dumps({"rows": rows, "files": [entry["filename"] for entry in trainer.train_dataset.cache_files]}))
