"""Experiment tracking besides TensorBoard: MLflow (REST API) and Weights & Biases (the `wandb` SDK).

Tracking is best effort by contract: a tracking server that is down or refuses a request never fails or
stalls training. `Tracker` swallows every backend error, remembers the first one (it becomes the
`TrackingDegraded` condition and Event on the job), keeps metrics in a bounded buffer while the server is
unreachable and sends them when it answers again.
"""
