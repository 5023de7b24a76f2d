"""Semver 2.0.0 parsing, precedence (spec section 11), bumps and ModelVersion object names."""

from __future__ import annotations

import itertools
import re

import pytest

from finetune_operator.semver import Version, bump, compare, next_version, object_name, parse, precedence_key

# The spec's own examples (section 11), lowest first.
SPEC_CHAIN = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]


def test_spec_precedence_chain_every_pair() -> None:
    for (i, a), (j, b) in itertools.product(enumerate(SPEC_CHAIN), repeat=2):
        assert compare(a, b) == (i > j) - (i < j), (a, b)


def test_sorting_shuffled_versions_restores_the_chain() -> None:
    shuffled = SPEC_CHAIN[3:] + SPEC_CHAIN[:3]
    assert sorted(shuffled, key=precedence_key) == SPEC_CHAIN


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.9.0", "1.10.0"),  # numeric, not lexical
        ("1.0.9", "1.0.10"),
        ("9.0.0", "10.0.0"),
        ("1.0.0-2", "1.0.0-10"),  # numeric pre-release identifiers compare numerically
        ("1.0.0-999", "1.0.0-a"),  # numeric < alphanumeric
        ("1.0.0-1a", "1.0.0-a"),  # alphanumeric: ASCII order ('1' < 'a')
        ("1.0.0-RC", "1.0.0-rc"),  # ASCII: uppercase sorts first
        ("1.0.0-a.b", "1.0.0-a-b"),  # first identifiers "a" < "a-b" (a prefix is lower in ASCII order)
        ("1.0.0-alpha.9", "1.0.0-alpha.10"),
        ("1.0.0-rc.1.2", "1.0.0-rc.1.2.0"),  # longer set with equal prefix is higher
        ("1.0.0-rc.99", "1.0.0"),
    ],
)
def test_precedence_pairs(lower: str, higher: str) -> None:
    assert compare(lower, higher) == -1
    assert compare(higher, lower) == 1


@pytest.mark.parametrize(("a", "b"), [("1.0.0+build.1", "1.0.0+build.2"), ("1.0.0-rc.1+x", "1.0.0-rc.1")])
def test_build_metadata_is_ignored_for_precedence(a: str, b: str) -> None:
    assert compare(a, b) == 0
    assert parse(a) != parse(b)  # but the versions are different strings


def test_parse_round_trips() -> None:
    version = parse("1.2.3-rc.1.x-y+build.007")
    assert version == Version(1, 2, 3, ("rc", "1", "x-y"), ("build", "007"))
    assert str(version) == "1.2.3-rc.1.x-y+build.007"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "v1.2.3",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-",
        "1.2.3-01",  # numeric pre-release identifier with a leading zero
        "1.2.3-rc..1",
        "1.2.3+",
        "1.2.3+a..b",
        "1.2.3-rc_1",
        " 1.2.3",
        "1.2.3\n",
        "1.2.-3",
        "1.2.3-\u0661",  # Arabic-Indic digit: \d in Python, not in the spec
        "\u0661.2.3",
    ],
)
def test_parse_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        parse(text)


@pytest.mark.parametrize(
    ("version", "part", "expected"),
    [
        ("1.2.3", "patch", "1.2.4"),
        ("1.2.3", "minor", "1.3.0"),
        ("1.2.3", "major", "2.0.0"),
        ("1.2.3+build", "patch", "1.2.4"),
        ("1.2.3-rc.1", "patch", "1.2.3"),  # the pre-release's own release
        ("1.2.3-rc.1", "minor", "1.3.0"),
        ("1.2.3-rc.1", "major", "2.0.0"),
        ("1.3.0-rc.1", "patch", "1.3.0"),
        ("1.3.0-rc.1", "minor", "1.3.0"),
        ("1.3.0-rc.1", "major", "2.0.0"),
        ("2.0.0-rc.1", "major", "2.0.0"),
        ("2.0.0-rc.1", "minor", "2.0.0"),
        ("0.0.0", "patch", "0.0.1"),
        ("0.9.9", "minor", "0.10.0"),
    ],
)
def test_bump(version: str, part: str, expected: str) -> None:
    assert bump(version, part) == expected  # type: ignore[arg-type]
    assert compare(expected, version) == 1


def test_bump_rejects_unknown_part() -> None:
    with pytest.raises(ValueError, match="patch, minor or major"):
        bump("1.0.0", "build")  # type: ignore[arg-type]


@pytest.mark.parametrize(("part", "expected"), [("patch", "0.0.1"), ("minor", "0.1.0"), ("major", "1.0.0")])
def test_first_version(part: str, expected: str) -> None:
    assert next_version([], part) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("existing", "part", "expected"),
    [
        (["0.1.0", "0.10.0", "0.9.0"], "patch", "0.10.1"),  # highest by precedence, not by string
        (["1.0.0", "1.1.0-rc.1"], "minor", "1.1.0"),
        (["1.0.0", "1.1.0-rc.1"], "patch", "1.1.0"),
        (["2.0.0+a", "2.0.0+b"], "patch", "2.0.1"),
        (iter(["1.0.0"]), "major", "2.0.0"),
    ],
)
def test_next_version(existing: list[str], part: str, expected: str) -> None:
    assert next_version(existing, part) == expected  # type: ignore[arg-type]


def test_next_version_rejects_an_invalid_existing_version() -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        next_version(["1.0.0", "latest"], "patch")


_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.2.3", "chat-v1.2.3"),
        ("1.2.3+build.5", "chat-v1.2.3"),
        ("1.3.0-rc.1", "chat-v1.3.0-rc.1"),
        ("1.3.0-RC.1+x", "chat-v1.3.0-rc.1"),
        ("1.0.0-x-y.z", "chat-v1.0.0-x-y.z"),
    ],
)
def test_object_name(version: str, expected: str) -> None:
    assert object_name("chat", version) == expected


@pytest.mark.parametrize("version", ["1.0.0-rc.-1", "1.0.0-rc-", "1.0.0--", "1.0.0-" + "a" * 300])
def test_object_name_hashes_prereleases_that_are_not_dns_safe(version: str) -> None:
    name = object_name("chat", version)
    assert _SUBDOMAIN.fullmatch(name) and len(name) <= 253
    assert name.startswith("chat-v1.0.0-")
    assert name == object_name("chat", version)  # deterministic


def test_object_names_differ_for_different_releases() -> None:
    versions = ["1.0.0", "1.0.1", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.-1", "1.0.0-rc-"]
    assert len({object_name("chat", v) for v in versions}) == len(versions)


@pytest.mark.parametrize("model", ["Chat", "-chat", "chat.v2", "c" * 64, ""])
def test_object_name_rejects_invalid_model_names(model: str) -> None:
    with pytest.raises(ValueError, match="DNS-1123 label"):
        object_name(model, "1.0.0")


def test_object_name_rejects_versions_too_long_for_a_name() -> None:
    with pytest.raises(ValueError, match="too long"):
        object_name("chat", f"1.0.{'9' * 250}")
