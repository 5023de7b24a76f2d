"""A training worker whose rank 1 reads a job config naming a missing base model: a user error on one rank.

Run by `launcher.supervise` in test_ranks.py as `python rank_fault_worker.py GOOD_JOB BAD_JOB`.
"""

import os
import sys

from finetune_trainer.train.__main__ import main

if __name__ == "__main__":
    good, bad = sys.argv[1:3]
    sys.exit(main(["--config", bad if os.environ["RANK"] == "1" else good]))
