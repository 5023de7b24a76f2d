"""A TEST-ONLY node agent: runs the pods bound to its node as local processes.

Never part of the product. It stands in for a kubelet where no container runtime exists, so an
integration test or the demo can run the operator's real pods (curation, training) on this machine:
it registers a Node (`local-runner`), heartbeats its Lease, runs init containers then containers
with the pod's command, args, env and volumes, and reports pod status through the API as a kubelet
would.

What it does NOT do, deliberately:
- It ignores the container image. Commands run on the host; a leading `python`/`python3` runs the
  agent's own interpreter (the project's venv), so `python -m finetune_trainer.train` works.
  An image's entrypoint is unknown to it: containers must set `command`.
- No isolation beyond a private mount namespace per container (volumes are bind-mounted at their
  mountPath there). Mountpoints that do not exist are created as empty dirs/files on the host.
- No resource limits (so no OOMKilled), no probes, no `kubectl logs`/exec; logs are files under
  the agent's state dir.
"""
