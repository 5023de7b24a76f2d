"""Semantic Versioning 2.0.0 (https://semver.org): parsing, precedence, bumps and ModelVersion object names.

Precedence follows section 11 of the spec exactly: major, minor and patch compare numerically; a version with
a pre-release is lower than the same version without one; pre-release identifiers compare left to right,
numeric ones numerically and below alphanumeric ones, alphanumeric ones in ASCII order, and a shorter set is
lower when all its identifiers equal the other's prefix. Build metadata never affects precedence, so
`precedence_key` rather than `==` is what orders and compares versions.

Bumps follow common practice (npm's `semver.inc`): the result is always higher than the input, and a bump
whose target *is* the pre-release's release only drops the pre-release (`1.2.3-rc.1` patch -> `1.2.3`,
`1.3.0-rc.1` minor -> `1.3.0`, `2.0.0-rc.1` major -> `2.0.0`); otherwise the part is increased, the lower
parts reset to 0 and the pre-release dropped (`1.2.3-rc.1` minor -> `1.3.0`). Build metadata is always
dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from finetune_operator.api.base import DNS1123_LABEL_PATTERN, SEMVER_PATTERN

Part = Literal["patch", "minor", "major"]

# ASCII: Python's \d also matches other scripts' digits, which the spec (and Go's RE2) do not allow.
_SEMVER = re.compile(SEMVER_PATTERN, re.ASCII)
_DNS1123_LABEL = re.compile(DNS1123_LABEL_PATTERN)
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_SUBDOMAIN = 253


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


# Sorts like the spec's precedence: (numeric flag, number, text) per pre-release identifier; a release sorts
# above every pre-release of the same version through its leading 1.
PrecedenceKey = tuple[int, int, int, tuple[int, tuple[tuple[int, int, str], ...]]]


def parse(text: str) -> Version:
    """Parse a strict semver 2.0.0 string (no leading `v`, no surrounding whitespace)."""
    match = _SEMVER.fullmatch(text)
    if match is None:
        raise ValueError(f"not a semantic version (semver 2.0.0, e.g. 1.2.3 or 1.3.0-rc.1): {text!r}")
    major, minor, patch, prerelease, build = match.groups()
    return Version(
        int(major),
        int(minor),
        int(patch),
        tuple(prerelease.split(".")) if prerelease else (),
        tuple(build.split(".")) if build else (),
    )


def precedence_key(version: Version | str) -> PrecedenceKey:
    """A key that orders versions by semver precedence: `max(versions, key=precedence_key)`."""
    v = parse(version) if isinstance(version, str) else version
    if not v.prerelease:
        return (v.major, v.minor, v.patch, (1, ()))
    identifiers = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in v.prerelease)
    return (v.major, v.minor, v.patch, (0, identifiers))


def compare(a: Version | str, b: Version | str) -> int:
    """-1, 0 or 1 as `a` has lower, equal or higher precedence than `b` (build metadata ignored)."""
    key_a, key_b = precedence_key(a), precedence_key(b)
    return (key_a > key_b) - (key_a < key_b)


def bump(version: Version | str, part: Part) -> str:
    """The next version after `version` by `part`; see the module docstring for pre-releases."""
    v = parse(version) if isinstance(version, str) else version
    pre = bool(v.prerelease)
    if part == "patch":
        return f"{v.major}.{v.minor}.{v.patch if pre else v.patch + 1}"
    if part == "minor":
        return f"{v.major}.{v.minor}.0" if pre and v.patch == 0 else f"{v.major}.{v.minor + 1}.0"
    if part == "major":
        return f"{v.major}.0.0" if pre and v.minor == v.patch == 0 else f"{v.major + 1}.0.0"
    raise ValueError(f"bump must be patch, minor or major, not {part!r}")


def next_version(existing: Iterable[str], part: Part) -> str:
    """The version after the highest of `existing`; the first version is a bump of 0.0.0.

    So a model's first version is 0.0.1 (patch), 0.1.0 (minor) or 1.0.0 (major).
    """
    versions = [parse(text) for text in existing]
    highest = max(versions, key=precedence_key, default=Version(0, 0, 0))
    return bump(highest, part)


def object_name(model_name: str, version: Version | str) -> str:
    """The name of the ModelVersion object for `model_name` at `version`: `<model>-v<version>`, lowercase.

    Deterministic, so a retried registration finds (409) the object it already created. Collisions are
    deliberate where the versions are the same release: build metadata is dropped (`1.0.0+a` and `1.0.0+b`
    have equal precedence, so registering both is refused). Lowercasing also makes `1.0.0-RC.1` and
    `1.0.0-rc.1` collide; the registry then refuses the second rather than keeping two near-identical
    versions. A pre-release that cannot appear in a DNS-1123 subdomain (an identifier starting or ending
    with `-`) is replaced by a hash of itself.
    """
    if not _DNS1123_LABEL.fullmatch(model_name) or len(model_name) > 63:
        raise ValueError(f"model name must be a DNS-1123 label: {model_name!r}")
    v = parse(version) if isinstance(version, str) else version
    release = f"{model_name}-v{v.major}.{v.minor}.{v.patch}"
    if len(release) > _MAX_SUBDOMAIN - 13:  # room for "-<12 hex>"
        raise ValueError(f"version too long for an object name: {v}")
    if not v.prerelease:
        return release
    prerelease = ".".join(v.prerelease)
    name = f"{release}-{prerelease.lower()}"
    if _DNS1123_SUBDOMAIN.fullmatch(name) and len(name) <= _MAX_SUBDOMAIN:
        return name
    return f"{release}-{hashlib.sha256(prerelease.encode()).hexdigest()[:12]}"
