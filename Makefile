# Developer entry points. Targets are grouped by topic; keep each group together.
VENV ?= $(HOME)/.cache/finetune-operator/venv
PYTHON ?= $(VENV)/bin/python

# --- local control plane (hack/cluster.py; state in $FTO_CLUSTER_DIR, default ~/.cache/finetune-operator/cluster)
.PHONY: build-controlplane test-components cluster-up cluster-down cluster-status test-integration

build-controlplane: ## build (or find cached) kube-apiserver, controller-manager, scheduler, etcd, kwok
	hack/build-controlplane.sh

test-components: ## build (or find cached) Kueue, the kstatus program, the Flux and Argo CD CRDs (optional test components)
	hack/build-kueue.sh
	hack/build-kstatus.sh
	hack/fetch-gitops-crds.sh

cluster-up: venv build-controlplane ## start the cluster (+ node agent); then: eval "$$(hack/cluster.py env)"
	$(PYTHON) hack/cluster.py up

cluster-down: ## stop every component of the cluster
	$(PYTHON) hack/cluster.py down

cluster-status:
	$(PYTHON) hack/cluster.py status

test-integration: venv ## integration tests against the local cluster (started and stopped if not running)
	$(VENV)/bin/pytest -m integration tests/integration

# --- container images and the kind end-to-end test (need a Docker engine; kind for e2e-kind)
VERSION ?= 0.1.0
REGISTRY ?= ghcr.io/finetune-operator
OPERATOR_IMAGE ?= $(REGISTRY)/operator:$(VERSION)
TRAINER_IMAGE ?= $(REGISTRY)/trainer:$(VERSION)
DOCKER ?= docker
.PHONY: images image-operator image-trainer images-push release e2e-kind

images: image-operator image-trainer ## build the operator and trainer images

# Both images build from the repository root: each installs the one Python project (pyproject.toml).
image-operator:
	$(DOCKER) build -f operator/Dockerfile -t $(OPERATOR_IMAGE) .

image-trainer:
	$(DOCKER) build -f trainer-image/Dockerfile -t $(TRAINER_IMAGE) .

images-push: images ## push both images of VERSION to REGISTRY
	$(DOCKER) push $(OPERATOR_IMAGE)
	$(DOCKER) push $(TRAINER_IMAGE)

release: venv ## dist/$(VERSION)/: the install manifest with pinned images, crds.yaml, SHA256SUMS, release notes
	$(PYTHON) hack/release.py --version $(VERSION) --registry $(REGISTRY)

e2e-kind: ## kind cluster, both images, dev overlay, quickstart to Completed, cluster deleted (KEEP_CLUSTER=1 keeps it)
	OPERATOR_IMAGE=$(OPERATOR_IMAGE) TRAINER_IMAGE=$(TRAINER_IMAGE) DOCKER=$(DOCKER) tests/e2e/kind.sh

# --- the virtualenv (every target below needs it; a no-op once installed)
.PHONY: venv
venv:
	hack/venv.sh $(VENV)

# --- the demo (the README's main command)
.PHONY: demo
demo: venv build-controlplane ## local cluster + operator + the quickstart job trained for real on CPU until Completed
	$(PYTHON) hack/demo.py

# --- the first machine with a GPU (no GPU runs this in CI: none is available there)
.PHONY: gpu-smoke
gpu-smoke: venv ## a few steps of tiny-gpt and a 1B-class Llama on CUDA: tokens/s, peak memory, precision, attention kernel
	$(PYTHON) bench/trainer/gpu_smoke.py

# --- checks and tests (the README's test command is `make test`)
.PHONY: test lint unit crds

lint: venv ## ruff, formatting, mypy, import layers, CRD drift, rustfmt
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy operator/finetune_operator operator/finetune_dashboard trainer-image/finetune_trainer
	$(VENV)/bin/lint-imports
	$(PYTHON) -m finetune_operator.codegen.crdgen --check
	cd trainer-image/native && cargo fmt --check

crds: ## regenerate crds/ and docs/api.md from the pydantic models
	$(PYTHON) -m finetune_operator.codegen.crdgen

unit: venv ## fast, pure tests
	$(VENV)/bin/pytest tests/unit

# Two pytest processes side by side (hack/run_suites.py), each line of output prefixed with its suite: the
# integration tests share one local cluster and run in one process (tests/integration/conftest.py refuses xdist
# workers); they mostly wait on it while the unit tests compute. pytest's 5 (nothing collected) fails the run.
# Each suite lists its 30 slowest tests: where CI's time goes. `exec`: the runner is make's child, not a shell's,
# so the SIGTERM make forwards when it is terminated reaches it (and through it the suites' teardown).
UNIT_TESTS ?= tests/unit
CLUSTER_TESTS ?= tests/integration tests/e2e
test: venv lint build-controlplane test-components ## everything CI runs: lint, unit, integration (starts a local cluster)
	exec $(PYTHON) hack/run_suites.py "unit=$(UNIT_TESTS)" "cluster=$(CLUSTER_TESTS)" -- --durations=30
