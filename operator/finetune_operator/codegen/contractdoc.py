"""The generated parts of docs/runtime-contract.md: tables rendered from `finetune_operator.api`.

The prose around them is written by hand; each generated part sits between
`<!-- generated:NAME -->` and `<!-- end:NAME -->` and is replaced as a whole, so a new reason, exit code or
field in the contract models shows up in the document (and `crdgen --check` fails until it is regenerated).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable

from pydantic import BaseModel

from finetune_operator.api.contract import EXIT_CODES, REASONS, ExitCode
from finetune_operator.api.jobconfig import JobConfig, JobIdentity, JobPaths
from finetune_operator.api.termination import MAX_BYTES, ProducedModel, TerminationMessage


def exit_codes() -> str:
    rows = ["| code | meaning | failure kind | Job podFailurePolicy | reason without a termination message |"]
    rows.append("|---|---|---|---|---|")
    for code, rule in EXIT_CODES.items():
        counted = code not in (ExitCode.SUCCEEDED, ExitCode.TERMINATED)
        kind = "User" if rule.fail_job else ("System" if counted else "-")
        action = "FailJob" if rule.fail_job else ("count against backoffLimit" if code else "-")
        fallback = f"`{rule.fallback.value}`" if rule.fallback else "-"
        rows.append(f"| {int(code)} | {rule.meaning} | {kind} | {action} | {fallback} |")
    return "\n".join(rows)


def reasons() -> str:
    rows = ["| reason | exit code | failure kind | meaning | what to do |", "|---|---|---|---|---|"]
    for reason, rule in REASONS.items():
        rows.append(
            f"| `{reason.value}` | {int(rule.exit_code)} | {rule.failure_kind.value} | {rule.meaning} | {rule.advice} |"
        )
    return "\n".join(rows)


def _type_name(annotation: object) -> str:
    if isinstance(annotation, type):
        return "object" if issubclass(annotation, BaseModel) else annotation.__name__
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(f'"{value}"' for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
        return " | ".join(names) + " (optional)"
    if origin is dict:
        return "object"
    return str(annotation).replace("typing.", "")


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        wire = f"{prefix}{info.alias or name}"
        description = (info.description or "").replace("\n", " ")
        rows.append(f"| `{wire}` | {_type_name(info.annotation)} | {description} |")
    return rows


def _field_table(*models: tuple[type[BaseModel], str]) -> str:
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for model, prefix in models:
        rows += _fields(model, prefix)
    return "\n".join(rows)


def job_config() -> str:
    return _field_table((JobConfig, ""), (JobIdentity, "job."), (JobPaths, "paths."))


def termination_message() -> str:
    table = _field_table((TerminationMessage, ""), (ProducedModel, "model."))
    return f"At most {MAX_BYTES} bytes of UTF-8 JSON (what the kubelet keeps).\n\n{table}"


SECTIONS: dict[str, Callable[[], str]] = {
    "job-config": job_config,
    "exit-codes": exit_codes,
    "reasons": reasons,
    "termination-message": termination_message,
}


def render(document: str, sections: dict[str, Callable[[], str]] = SECTIONS) -> str:
    """`document` with every generated section replaced by its current content."""
    for name, make in sections.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
        match = pattern.search(document)
        if match is None:
            raise ValueError(f"the document has no <!-- generated:{name} --> section")
        document = document[: match.start()] + f"{match.group(1)}{make()}\n{match.group(2)}" + document[match.end() :]
    return document
