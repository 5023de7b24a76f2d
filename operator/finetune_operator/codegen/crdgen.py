"""Generate the CRDs, docs/api.md, docs/reasons.md and the tables of docs/runtime-contract.md from the API.

    python -m finetune_operator.codegen.crdgen            # (re)write crds/*.yaml and docs/api.md
    python -m finetune_operator.codegen.crdgen --check    # exit 1 with a diff when the committed files drift

The pydantic models in `finetune_operator.api` are the single source of truth; the generated files are
committed so that `kubectl apply -f crds/` needs no Python, and a unit test fails when they drift.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from finetune_operator.api import (
    FineTuningJobSpec,
    FineTuningJobStatus,
    ModelVersionSpec,
    base,
    finetuningjob,
    modelversion,
    registeredmodel,
)
from finetune_operator.codegen import admission, apidoc, contractdoc, reasondoc, settingsdoc, sizingdoc
from finetune_operator.codegen.openapi import JsonObject, structural_schema

COMMAND = "python -m finetune_operator.codegen.crdgen"
HEADER = f"# Generated from finetune_operator.api by `{COMMAND}`. Do not edit.\n"


@dataclass(frozen=True)
class Kind:
    """What a CRD needs beyond the schema of its spec and status."""

    kind: str
    plural: str
    singular: str
    short_names: list[str]
    categories: list[str]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel] | None
    columns: list[JsonObject]


def _column(name: str, path: str, type_: str, priority: int = 0, description: str = "") -> JsonObject:
    column: JsonObject = {"name": name, "jsonPath": path, "type": type_}
    if priority:
        column["priority"] = priority
    if description:
        column["description"] = description
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")

KINDS = (
    Kind(
        kind=finetuningjob.KIND,
        plural=finetuningjob.PLURAL,
        singular=finetuningjob.SINGULAR,
        short_names=finetuningjob.SHORT_NAMES,
        categories=finetuningjob.CATEGORIES,
        description="A fine-tuning run: curation of agent sessions, training, evaluation, registration.",
        spec=FineTuningJobSpec,
        status=FineTuningJobStatus,
        columns=[
            _column("Phase", ".status.phase", "string"),
            _column("Progress", ".status.progress.percent", "integer", description="Percent of training steps"),
            _column("Loss", ".status.metrics.trainLoss", "number"),
            _column("Eval-Loss", ".status.metrics.evalLoss", "number"),
            _column("Model", ".status.model.version", "string"),
            _column("Reason", ".status.reason", "string", description="Why the job is in its phase (docs/reasons.md)"),
            _AGE,
            _column("Base", ".spec.baseModel.name", "string", priority=1),
            _column("GPUs", ".spec.resources.gpus", "integer", priority=1),
            _column("Message", ".status.message", "string", priority=1),
        ],
    ),
    Kind(
        kind=modelversion.KIND,
        plural=modelversion.PLURAL,
        singular=modelversion.SINGULAR,
        short_names=modelversion.SHORT_NAMES,
        categories=modelversion.CATEGORIES,
        description="One registered, immutable version of a fine-tuned model.",
        spec=ModelVersionSpec,
        status=None,
        columns=[
            _column("Model", ".spec.modelName", "string"),
            _column("Version", ".spec.version", "string"),
            _column("Base", ".spec.baseModel", "string"),
            _column("Method", ".spec.method", "string"),
            _column("Eval-Loss", ".spec.metrics.evalLoss", "number"),
            _column("Job", ".spec.job.name", "string"),
            _AGE,
            _column("Aliases", ".metadata.annotations.finetune\\.dev/aliases", "string"),
            _column("Artifact", ".spec.artifact.uri", "string", priority=1),
            _column("Dataset", ".spec.dataset.sha256", "string", priority=1),
        ],
    ),
    Kind(
        kind=registeredmodel.KIND,
        plural=registeredmodel.PLURAL,
        singular=registeredmodel.SINGULAR,
        short_names=registeredmodel.SHORT_NAMES,
        categories=registeredmodel.CATEGORIES,
        description="A model name in the registry: its versions, their lifecycle state and movable aliases.",
        spec=registeredmodel.RegisteredModelSpec,
        status=registeredmodel.RegisteredModelStatus,
        columns=[
            _column("Latest", ".status.latestVersion", "string"),
            _column("Highest", ".status.highestVersion", "string"),
            _column("Versions", ".status.versionCount", "integer"),
            _column("Champion", ".status.aliases.champion.version", "string"),
            _AGE,
            _column(
                "Aliases-Resolved", '.status.conditions[?(@.type=="AliasesResolved")].status', "string", priority=1
            ),
        ],
    ),
)


def object_schema(kind: Kind) -> JsonObject:
    """The openAPIV3Schema of a kind: apiVersion, kind, metadata (the server's own), spec, status."""
    properties: JsonObject = {
        "apiVersion": {"type": "string", "description": "APIVersion of the object: finetune.dev/v1alpha1."},
        "kind": {"type": "string", "description": f"Kind of the object: {kind.kind}."},
        "metadata": {"type": "object"},
        "spec": structural_schema(kind.spec),
    }
    if kind.status is not None:
        properties["status"] = structural_schema(kind.status)
    return {"type": "object", "description": kind.description, "properties": properties, "required": ["spec"]}


def crd(kind: Kind) -> JsonObject:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of a kind."""
    version: JsonObject = {
        "name": base.VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": object_schema(kind)},
        "additionalPrinterColumns": kind.columns,
    }
    if kind.status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{base.GROUP}"},
        "spec": {
            "group": base.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": kind.short_names,
                "categories": kind.categories,
            },
            "versions": [version],
        },
    }


def to_yaml(document: Any) -> str:
    # sort_keys and a fixed width make the output byte-for-byte stable across runs and platforms.
    return HEADER + yaml.safe_dump(document, sort_keys=True, width=120, allow_unicode=True)


CONTRACT_DOC = "docs/runtime-contract.md"
INSTALL_DOC = "docs/install.md"
TRAINER_DOC = "docs/trainer.md"


def generated_files(root: Path) -> dict[str, str]:
    """Path relative to the repository root -> exact content."""
    crds = {f"crds/{base.GROUP}_{kind.plural}.yaml": crd(kind) for kind in KINDS}
    files = {path: to_yaml(document) for path, document in crds.items()}
    files["docs/api.md"] = apidoc.render(list(crds.values()), COMMAND)
    files[CONTRACT_DOC] = contractdoc.render((root / CONTRACT_DOC).read_text(encoding="utf-8"))
    files["docs/reasons.md"] = reasondoc.render(COMMAND)
    policy = admission.trainer_status_policy()
    files[admission.TRAINER_POLICY_PATH] = HEADER + yaml.safe_dump_all(policy, sort_keys=True, width=120)
    install = (root / INSTALL_DOC).read_text(encoding="utf-8")
    files[INSTALL_DOC] = contractdoc.render(install, {"operator-settings": settingsdoc.settings_table})
    trainer = (root / TRAINER_DOC).read_text(encoding="utf-8")
    files[TRAINER_DOC] = contractdoc.render(trainer, {"sizing": sizingdoc.sizing_table})
    return files


def drift(root: Path, files: dict[str, str]) -> str:
    """A unified diff between the committed files and the generated ones; empty when they match."""
    chunks: list[str] = []
    for path, wanted in sorted(files.items()):
        target = root / path
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        chunks += difflib.unified_diff(
            current.splitlines(keepends=True), wanted.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    return "".join(chunks)


def _repository_root() -> Path:
    # This file is operator/finetune_operator/codegen/crdgen.py in a checkout (editable install): write there
    # whatever the working directory; an installed wheel has no checkout, so fall back to the cwd.
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / "pyproject.toml").exists() else Path.cwd()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files drift")
    parser.add_argument("--root", type=Path, default=_repository_root(), help="repository root")
    args = parser.parse_args(argv)
    files = generated_files(args.root)
    if args.check:
        diff = drift(args.root, files)
        if diff:
            sys.stdout.write(diff)
            sys.stderr.write(f"generated files are out of date; run `{COMMAND}`\n")
            return 1
        return 0
    for path, content in files.items():
        target = args.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
