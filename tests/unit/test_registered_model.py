"""RegisteredModels (finetune_operator.modelregistry and the generated CRD): status from versions, aliases."""

from __future__ import annotations

from typing import Any

import pytest
from test_crd import _schema, admission_errors

from finetune_operator import modelregistry
from finetune_operator.api import FineTuningJobSpec, RegisteredModelSpec

NOW = "2026-12-03T10:00:00Z"


def version(number: str, created: str, eval_loss: float | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "modelName": "support-bot",
        "version": number,
        "artifact": {"pvc": "w", "path": f"model/{number}", "uri": f"pvc://w/model/{number}"},
        "createdAt": created,
    }
    if eval_loss is not None:
        spec["metrics"] = {"evalLoss": eval_loss}
    return {"metadata": {"name": f"support-bot-v{number}"}, "spec": spec}


VERSIONS = [
    version("1.4.0", "2026-12-01T00:00:00Z", 1.2),
    version("1.5.0-rc.1", "2026-12-03T00:00:00Z", 1.1),
    version("1.10.0", "2026-12-02T00:00:00Z"),
]


def status(spec: dict[str, Any], versions: list[dict[str, Any]] = VERSIONS, previous: Any = None) -> dict[str, Any]:
    model = RegisteredModelSpec.model_validate(spec)
    return modelregistry.model_status(model, versions, generation=3, previous_conditions=previous, now=NOW)


def test_versions_newest_first_with_latest_and_highest_by_semver() -> None:
    result = status({})
    assert [entry["version"] for entry in result["versions"]] == ["1.5.0-rc.1", "1.10.0", "1.4.0"]
    # 1.10.0 > 1.5.0-rc.1 > 1.4.0 by precedence, although 1.5.0-rc.1 is the latest registered.
    assert (result["latestVersion"], result["highestVersion"], result["versionCount"]) == ("1.5.0-rc.1", "1.10.0", 3)
    assert result["versions"][2] == {
        "version": "1.4.0",
        "modelVersion": "support-bot-v1.4.0",
        "state": "Active",
        "createdAt": "2026-12-01T00:00:00Z",
        "evalLoss": 1.2,
    }


def test_aliases_resolve_to_their_versions_and_annotate_them() -> None:
    result = status({"aliases": {"champion": "1.4.0", "canary": "1.5.0-rc.1", "stable": "1.4.0"}})
    assert result["aliases"]["champion"] == {
        "version": "1.4.0",
        "modelVersion": "support-bot-v1.4.0",
        "uri": "pvc://w/model/1.4.0",
    }
    assert result["conditions"][0]["status"] == "True"
    spec = RegisteredModelSpec.model_validate({"aliases": {"champion": "1.4.0", "stable": "1.4.0"}})
    assert modelregistry.aliases_by_version(spec, VERSIONS) == {
        "support-bot-v1.4.0": "champion,stable",
        "support-bot-v1.5.0-rc.1": "",
        "support-bot-v1.10.0": "",
    }


def test_an_alias_to_an_unknown_or_archived_version_is_named_in_the_condition() -> None:
    result = status({"aliases": {"champion": "2.0.0", "canary": "1.4.0"}, "archived": ["1.4.0"]})
    condition = result["conditions"][0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "AliasesResolved",
        "False",
        "UnresolvedAlias",
    )
    assert "alias champion names version 2.0.0, which is not registered" in condition["message"]
    assert "alias canary names version 1.4.0, which is archived" in condition["message"]
    assert result["aliases"] == {}
    assert result["versions"][2]["state"] == "Archived"


def test_the_condition_keeps_its_transition_time_while_unchanged() -> None:
    first = status({"aliases": {"champion": "1.4.0"}})["conditions"]
    first[0]["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    assert status({"aliases": {"champion": "1.4.0"}}, previous=first)["conditions"][0]["lastTransitionTime"] == (
        "2026-01-01T00:00:00Z"
    )


def test_a_model_without_versions() -> None:
    result = status({}, versions=[])
    assert result["versionCount"] == 0 and "latestVersion" not in result and result["versions"] == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"aliases": {"Champion": "1.0.0"}}, "aliases"),
        ({"aliases": {"champion_1": "1.0.0"}}, "aliases"),
        ({"aliases": {"champion": "v1.0.0"}}, "aliases.champion"),
        ({"aliases": {f"a{i}": "1.0.0" for i in range(33)}}, "aliases"),
        ({"archived": ["latest"]}, "archived[0]"),
        ({"description": "x" * 1025}, "description"),
    ],
)
def test_invalid_registered_model_specs_are_rejected_by_the_crd(spec: dict[str, Any], field: str) -> None:
    errors = admission_errors(_schema("RegisteredModel"), {"spec": spec})
    assert errors, spec
    assert any(field.split("[")[0].split(".")[0] in error for error in errors), errors


def test_a_valid_registered_model_spec_is_accepted() -> None:
    assert admission_errors(_schema("RegisteredModel"), {"spec": {"aliases": {"champion": "1.4.0"}}}) == []


@pytest.mark.parametrize(
    ("current", "candidate", "moves"),
    [
        (None, "0.0.1", True),
        ("1.4.0", "1.5.0-rc.1", True),
        ("1.5.0-rc.1", "1.5.0", True),
        ("1.10.0", "1.9.0", False),
        ("1.4.0", "1.4.0", False),
        ("1.4.0+build.2", "1.4.0+build.1", False),
    ],
)
def test_promotion_only_moves_an_alias_forward(current: str | None, candidate: str, moves: bool) -> None:
    # Racing jobs: the higher version wins in any write order; build metadata has no precedence (semver 10).
    assert modelregistry.promotion_moves(current, candidate) is moves


def job_spec(compare: dict[str, Any] | None, base: str = "llama") -> FineTuningJobSpec:
    evaluation = {"compareTo": compare} if compare is not None else {}
    return FineTuningJobSpec.model_validate(
        {
            "baseModel": {"name": base, "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "s", "key": "s.jsonl"}}},
            "output": {"modelName": "support-bot"},
            "evaluation": evaluation,
        }
    )


def adapter(number: str, base: str = "llama") -> dict[str, Any]:
    mv = version(number, "2026-12-01T00:00:00Z")
    mv["spec"]["artifact"] = {"pvc": f"job-{number}-workspace", "path": "model", "adapter": True}
    mv["spec"]["baseModel"] = base
    return mv


def in_a_bucket(mv: dict[str, Any]) -> dict[str, Any]:
    """The version as spec.output.s3 registers it: its artifact is a folder in a bucket, on no claim."""
    mv["spec"]["artifact"] = {"uri": f"s3://trained/support-bot/{mv['spec']['version']}/", "adapter": True}
    return mv


def registered(aliases: dict[str, str], archived: list[str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "support-bot"}, "spec": {"aliases": aliases, "archived": archived or []}}


def test_champion_resolves_the_alias_to_its_artifact() -> None:
    champion, problem = modelregistry.champion_for(
        job_spec({"maxRegression": 0.1}), registered({"champion": "1.4.0"}), [adapter("1.4.0"), adapter("1.5.0")]
    )
    assert problem is None and champion is not None
    assert (champion.version, champion.model_version, champion.claim) == (
        "1.4.0",
        "support-bot-v1.4.0",
        "job-1.4.0-workspace",
    )
    assert (champion.path, champion.adapter, champion.max_regression) == ("/mnt/champion/model", True, 0.1)


@pytest.mark.parametrize(
    ("compare", "model", "expected"),
    [
        (None, registered({"champion": "1.4.0"}), None),  # no gate asked for
        ({}, None, None),  # the model's first job: no RegisteredModel yet
        ({}, registered({"canary": "1.4.0"}), None),  # the alias is not set yet
    ],
)
def test_nothing_to_compare_against_trains_without_the_gate(
    compare: dict[str, Any] | None, model: dict[str, Any] | None, expected: None
) -> None:
    assert modelregistry.champion_for(job_spec(compare), model, [adapter("1.4.0")]) == (None, expected)


@pytest.mark.parametrize(
    ("model", "versions", "base", "problem"),
    [
        (
            registered({"champion": "9.0.0"}),
            [adapter("1.4.0")],
            "llama",
            "names version 9.0.0, which is not registered",
        ),
        (registered({"champion": "1.4.0"}, ["1.4.0"]), [adapter("1.4.0")], "llama", "1.4.0, which is archived"),
        (
            registered({"champion": "1.4.0"}),
            [adapter("1.4.0", base="mistral")],
            "llama",
            "a LoRA adapter on base model mistral; this job trains llama",
        ),
        (
            registered({"champion": "1.4.0"}),
            [in_a_bucket(adapter("1.4.0"))],
            "llama",
            "whose model is in a bucket (s3://trained/support-bot/1.4.0/)",
        ),
    ],
)
def test_a_champion_that_cannot_be_compared_is_a_problem_naming_why(
    model: dict[str, Any], versions: list[dict[str, Any]], base: str, problem: str
) -> None:
    champion, found = modelregistry.champion_for(job_spec({}, base), model, versions)
    assert champion is None and found is not None and problem in found
    assert found.startswith("alias champion of model support-bot names version")
