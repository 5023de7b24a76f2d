"""A read-only web dashboard for FineTuningJobs and the model registry (`python -m finetune_dashboard`)."""
