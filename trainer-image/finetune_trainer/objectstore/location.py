"""`s3://bucket/key-prefix/glob` URIs: where listing starts and which keys match (pure).

The glob follows the PVC source's rules (`glob.glob(..., recursive=True)`): `*` and `?` stay within one
path segment, `**` spans any number of them, `[...]` is a character class. Listing starts at the longest
literal prefix before the first wildcard, so a glob never lists the whole bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "s3://"
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str
    """Everything after the bucket: a key, a prefix or a glob."""

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    @property
    def list_prefix(self) -> str:
        """The literal part of `key` before its first wildcard: what S3 can filter on."""
        for index, char in enumerate(self.key):
            if char in _WILDCARDS:
                return self.key[:index]
        return self.key

    @property
    def is_glob(self) -> bool:
        return any(char in _WILDCARDS for char in self.key)

    def folder(self) -> str:
        """`key` as a folder prefix: empty for the bucket's root, else ending with one slash."""
        return self.key.rstrip("/") + "/" if self.key.strip("/") else ""

    def child(self, *parts: str) -> S3Location:
        return S3Location(self.bucket, self.folder() + "/".join(part.strip("/") for part in parts))


def parse(uri: str) -> S3Location:
    """`s3://bucket/key` -> S3Location; ValueError names what is wrong."""
    if not uri.startswith(SCHEME):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return S3Location(bucket, key)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """The regular expression a key must fully match for `glob`."""
    out: list[str] = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**/", index):
            out.append("(?:[^/]*/)*")
            index += 3
            continue
        if glob.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := glob.find("]", index + 2)) > 0:
            body = glob[index + 1 : end]
            negate = body.startswith("!")
            out.append("[" + ("^" if negate else "") + re.escape(body[1:] if negate else body) + "]")
            index = end + 1
            continue
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))


def matches(location: S3Location, key: str) -> bool:
    """Whether `key` is selected: glob match, or for a plain key the key itself or anything under it as a folder."""
    if location.is_glob:
        return glob_pattern(location.key).fullmatch(key) is not None
    return key == location.key or key.startswith(location.folder())
