import subprocess
import sys

from finetune_trainer.train import launcher


def test_one_process_per_visible_gpu_unless_overridden() -> None:
    assert launcher.process_count({}, 0) == 1
    assert launcher.process_count({}, 1) == 1
    assert launcher.process_count({}, 8) == 8
    assert launcher.process_count({"FINETUNE_PROCESSES": "2"}, 0) == 2
    # A worker never launches again.
    assert launcher.process_count({"LOCAL_RANK": "0", "RANK": "2"}, 8) == 1
    assert launcher.rank({"RANK": "2"}) == 2
    assert launcher.rank({}) == 0


def test_workers_get_the_pods_grace_period() -> None:
    assert launcher.shutdown_timeout({"FINETUNE_GRACE_SECONDS": "600"}) == 600
    assert launcher.shutdown_timeout({}) == 30


def test_a_worker_killed_by_a_signal_exits_like_a_killed_container() -> None:
    assert launcher.failure_exit_code(-9) == 137
    assert launcher.failure_exit_code(11) == 11


def test_the_supervisor_does_not_import_the_training_libraries() -> None:
    """It only starts the ranks: importing transformers/TRL/PEFT cost it ~8 CPU-seconds before they started."""
    probe = (
        "import sys, finetune_trainer.train.__main__; print(sorted({'transformers', 'trl', 'peft'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]
