import os

# numpy (output.py) starts one OpenBLAS thread per CPU that spins for a while although curation
# makes no BLAS call: ~2% of a run's CPU time. Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from finetune_trainer.curate.cli import main

# Guarded: importing this module must not run curation.
if __name__ == "__main__":
    raise SystemExit(main())
