"""docs/reasons.md: every status.reason, rendered from `finetune_operator.api.reasons`."""

from __future__ import annotations

from finetune_operator.api.reasons import catalogue


def render(command: str) -> str:
    rows = [
        "# Status reasons",
        "",
        f"Generated from `operator/finetune_operator/api/reasons.py` by `{command}`; do not edit.",
        "",
        "`kubectl get ftj` shows the reason; `kubectl describe ftj <job>` shows the message and the Events.",
        "`failureKind` says who acts on a failure: `User` (the job's spec or data) or `System` (the platform).",
        "docs/troubleshooting.md walks through a stuck or failed job.",
        "",
        "| reason | phase | failureKind | meaning | what to do |",
        "|---|---|---|---|---|",
    ]
    for entry in catalogue():
        phases = ", ".join(phase.value for phase in entry.phases)
        kind = entry.failure_kind.value if entry.failure_kind else "-"
        rows.append(f"| `{entry.reason}` | {phases} | {kind} | {entry.meaning} | {entry.action} |")
    return "\n".join(rows) + "\n"
