"""How the pods of a multi-node job (spec.resources.nodes > 1) find each other: the environment the operator gives
them and the trainer reads. One place, imported by both sides."""

NODES_ENV = "FINETUNE_NODES"
"""The group's pod count (spec.resources.nodes)."""
NODE_RANK_ENV = "JOB_COMPLETION_INDEX"
"""The pod's node rank: the Indexed Job's completion index, set by the Job controller itself."""
MASTER_ADDR_ENV = "FINETUNE_MASTER_ADDR"
"""Node rank 0's stable hostname, `<Job>-0.<headless Service>` (the pod's DNS search path completes it)."""
MASTER_PORT_ENV = "FINETUNE_MASTER_PORT"
GROUP_ID_ENV = "FINETUNE_GROUP_ID"
"""The Job's uid: the same in every pod of one group attempt, a new one for each attempt (the rendezvous' run id)."""
RENDEZVOUS_SECONDS_ENV = "FINETUNE_RENDEZVOUS_SECONDS"
"""How long the pods wait for each other before failing with RendezvousTimeout."""
MASTER_PORT = 29500
"""torchrun's default port; each pod has its own network namespace, so every job can use it."""
