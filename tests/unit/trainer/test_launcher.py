from finetune_trainer.train import launcher


def test_one_gpu_or_cpu_trains_in_process() -> None:
    assert launcher.torchrun_argv("/py", 0, [], {}) is None
    assert launcher.torchrun_argv("/py", 1, [], {}) is None


def test_several_gpus_relaunch_under_torchrun_once() -> None:
    command = launcher.torchrun_argv("/py", 4, ["--config", "/etc/job.json"], {})
    assert command == [
        "/py",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=4",
        "-m",
        "finetune_trainer.train",
        "--config",
        "/etc/job.json",
    ]
    # A torchrun worker must not relaunch again.
    assert launcher.torchrun_argv("/py", 4, [], {"LOCAL_RANK": "0", "RANK": "2"}) is None
    assert launcher.rank({"RANK": "2"}) == 2
    assert launcher.rank({}) == 0
