# Developer entry points. Targets are grouped by topic; keep each group together.
VENV ?= $(HOME)/.cache/finetune-operator/venv
PYTHON ?= $(VENV)/bin/python

# --- local control plane (hack/cluster.py; state in $FTO_CLUSTER_DIR, default ~/.cache/finetune-operator/cluster)
.PHONY: build-controlplane cluster-up cluster-down cluster-status test-integration

build-controlplane: ## build (or find cached) kube-apiserver, controller-manager, scheduler, etcd, kwok
	hack/build-controlplane.sh

cluster-up: build-controlplane ## start the cluster (+ node agent); then: eval "$$(hack/cluster.py env)"
	$(PYTHON) hack/cluster.py up

cluster-down: ## stop every component of the cluster
	$(PYTHON) hack/cluster.py down

cluster-status:
	$(PYTHON) hack/cluster.py status

test-integration: ## integration tests against the local cluster (started and stopped if not running)
	$(VENV)/bin/pytest -m integration tests/integration
