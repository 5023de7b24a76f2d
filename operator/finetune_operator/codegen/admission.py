"""ValidatingAdmissionPolicies of the install (manifests/base/admission/*.yaml), generated where they depend on the
API: the trainer's status policy lists every status field but the four the trainer reports, from the status
model, so a new status field is protected the day it is added.
"""

from __future__ import annotations

from typing import Any

from finetune_operator import naming
from finetune_operator.api import GROUP
from finetune_operator.api.status import FineTuningJobStatus

# What a training pod reports while it runs (finetune_trainer.report); everything else is the operator's.
TRAINER_FIELDS = ("progress", "metrics", "checkpoint", "memoryPlan")
TRAINER_POLICY = "finetune-trainer-status"
TRAINER_POLICY_PATH = "manifests/base/admission/trainer-status.yaml"


def operator_fields() -> list[str]:
    aliases = [field.alias or name for name, field in FineTuningJobStatus.model_fields.items()]
    return sorted(alias for alias in aliases if alias not in TRAINER_FIELDS)


def _unchanged(field: str) -> str:
    """CEL: `status.<field>` is as it was (present with the same value, or absent before and after)."""
    old = f"has(oldObject.status) && has(oldObject.status.{field})"
    new = f"has(object.status) && has(object.status.{field})"
    return f"({old}) ? ({new} && object.status.{field} == oldObject.status.{field}) : !({new})"


def trainer_status_policy() -> list[dict[str, Any]]:
    suffix = naming.TRAINER_SUFFIX
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": TRAINER_POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["finetuningjobs/status"],
                    }
                ]
            },
            # Every job's training pods run as `<job>-trainer` (naming.trainer_identity), as does anyone
            # impersonating that ServiceAccount.
            "matchConditions": [
                {
                    "name": "trainer-service-accounts",
                    "expression": "request.userInfo.username.startsWith('system:serviceaccount:') && "
                    f"request.userInfo.username.endsWith('{suffix}')",
                }
            ],
            "validations": [
                {
                    "expression": _unchanged(field),
                    "message": f"a training pod may change only status.{', status.'.join(TRAINER_FIELDS)}; "
                    f"status.{field} is the operator's",
                    "reason": "Forbidden",
                }
                for field in operator_fields()
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": TRAINER_POLICY},
        "spec": {"policyName": TRAINER_POLICY, "validationActions": ["Deny"]},
    }
    return [policy, binding]
