"""Operator settings from the environment (finetune_operator.config.from_env)."""

from __future__ import annotations

import dataclasses

import pytest

from finetune_operator.config import DEFAULT_TRAINER_IMAGE, ENV_VARIABLES, Settings, from_env

INTEGER_VARIABLES = {
    "FTO_MAX_ACTIVE_PER_NAMESPACE": "max_active_per_namespace",
    "FTO_METRICS_PORT": "metrics_port",
    "FTO_HEALTH_PORT": "health_port",
    "FTO_SOURCE_WAIT_SECONDS": "source_wait_seconds",
    "FTO_SWEEP_SECONDS": "sweep_seconds",
    "FTO_TERMINATION_GRACE_SECONDS": "termination_grace_seconds",
    "FTO_PEERING_LIFETIME_SECONDS": "peering_lifetime_seconds",
}


def test_defaults_from_an_empty_environment() -> None:
    settings = from_env({})
    assert settings == Settings()
    assert settings.trainer_image == DEFAULT_TRAINER_IMAGE == "ghcr.io/finetune-operator/trainer:0.1.0"
    assert settings.namespaces == ()
    assert settings.max_active_per_namespace == 0
    assert settings.metrics_port == 9090
    assert settings.health_port == 8080
    assert settings.log_level == "INFO"
    assert settings.log_format == "json"
    assert settings.peering == "finetune-operator"
    assert settings.peering_lifetime_seconds == 60
    assert settings.peering_mandatory is False
    assert settings.source_wait_seconds == 300
    assert settings.sweep_seconds == 15
    assert settings.termination_grace_seconds == 120
    assert settings.python_command == "python"


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTO_TRAINER_IMAGE", "registry.local/trainer:dev")
    monkeypatch.setenv("FTO_SWEEP_SECONDS", "7")
    settings = from_env()
    assert settings.trainer_image == "registry.local/trainer:dev"
    assert settings.sweep_seconds == 7


def test_every_variable_is_parsed() -> None:
    settings = from_env(
        {
            "FTO_TRAINER_IMAGE": " registry.local/trainer:1.2 ",
            "FTO_NAMESPACES": "ml, research ,,team-a,",
            "FTO_MAX_ACTIVE_PER_NAMESPACE": "3",
            "FTO_METRICS_PORT": "0",
            "FTO_HEALTH_PORT": " 8081 ",
            "FTO_LOG_LEVEL": "debug",
            "FTO_LOG_FORMAT": "text",
            "FTO_PEERING": "team-a",
            "FTO_PEERING_LIFETIME_SECONDS": "15",
            "FTO_PEERING_MANDATORY": "true",
            "FTO_SOURCE_WAIT_SECONDS": "60",
            "FTO_SWEEP_SECONDS": "5",
            "FTO_TERMINATION_GRACE_SECONDS": "600",
            "FTO_PYTHON": "/usr/local/bin/python3",
        }
    )
    assert settings == Settings(
        trainer_image="registry.local/trainer:1.2",
        namespaces=("ml", "research", "team-a"),
        max_active_per_namespace=3,
        metrics_port=0,
        health_port=8081,
        log_level="DEBUG",
        log_format="text",
        peering="team-a",
        peering_lifetime_seconds=15,
        peering_mandatory=True,
        source_wait_seconds=60,
        sweep_seconds=5,
        termination_grace_seconds=600,
        python_command="/usr/local/bin/python3",
    )


@pytest.mark.parametrize("variable", sorted(INTEGER_VARIABLES))
def test_blank_integers_and_image_fall_back_to_defaults(variable: str) -> None:
    settings = from_env({variable: "   ", "FTO_TRAINER_IMAGE": "  ", "FTO_NAMESPACES": " , "})
    assert settings == Settings()


@pytest.mark.parametrize("variable", sorted(INTEGER_VARIABLES))
def test_each_integer_variable_is_read(variable: str) -> None:
    assert getattr(from_env({variable: "4242"}), INTEGER_VARIABLES[variable]) == 4242


@pytest.mark.parametrize("variable", sorted(INTEGER_VARIABLES))
@pytest.mark.parametrize("raw", ["ten", "1.5", "8080x", "0x10"])
def test_non_integer_is_a_clear_error(variable: str, raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        from_env({variable: raw})
    assert str(caught.value) == f"{variable} must be an integer, got {raw!r}"


@pytest.mark.parametrize(("raw", "mandatory"), [("true", True), (" True ", True), ("false", False), ("", False)])
def test_peering_mandatory_is_read(raw: str, mandatory: bool) -> None:
    assert from_env({"FTO_PEERING_MANDATORY": raw}).peering_mandatory is mandatory


@pytest.mark.parametrize("raw", ["yes", "1", "on"])
def test_peering_mandatory_is_true_or_false_nothing_else(raw: str) -> None:
    with pytest.raises(ValueError, match="FTO_PEERING_MANDATORY must be true or false"):
        from_env({"FTO_PEERING_MANDATORY": raw})


def test_settings_are_immutable() -> None:
    settings = from_env({})
    with pytest.raises(AttributeError):
        settings.metrics_port = 1  # type: ignore[misc]


def test_every_setting_has_one_environment_variable() -> None:
    fields = [field.name for field in dataclasses.fields(Settings)]
    assert list(ENV_VARIABLES) == fields
    assert len(set(ENV_VARIABLES.values())) == len(fields)
    assert all(name.startswith("FTO_") for name in ENV_VARIABLES.values())
