"""A TEST-ONLY node agent: runs the pods bound to its node as local processes.

Never part of the product. It stands in for a kubelet where no container runtime exists, so an
integration test or the demo can run the operator's real pods (curation, training) on this machine:
it registers a Node (`local-runner`), heartbeats its Lease, runs init containers then containers
with the pod's command, args, env and volumes, and reports pod status through the API as a kubelet
would.

What it does NOT do, deliberately:
- It ignores the container image. Commands run on the host; a leading `python`/`python3` runs the
  agent's own interpreter (the project's venv), so `python -m finetune_trainer.train` works.
  Only the project's own images' entrypoints are known (read from their Dockerfiles); other
  containers must set `command`.
- Isolation is a private mount namespace per container (volumes are bind-mounted at their
  mountPath there) and the securityContext's user, groups and read-only root (security.py,
  enter.py); mountpoints that do not exist are created as empty dirs/files on the host.
- No resource limits (so no OOMKilled), no probes, no exec. `kubectl logs` works: the agent serves
  the kubelet's container-log endpoint (logserver.py) from the files it records (containerlog.py).
"""
