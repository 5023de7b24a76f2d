"""The redaction rules of trainer-image/native/src/rules.rs in RE2 syntax, applied as the pure-Python curator did.

The pure-Python redaction (commit 566c5b3's redact.py), its rule table extended in step with the
native one: test_native.py checks that the extension redacts every text exactly as this does, so a
rule transcribed differently on either side, or a construct the two engines read differently, fails.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import re2


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    secret: str
    before: str = ""
    after: str = ""
    code_aware: bool = False  # leave an unquoted value that reads_as_code


_S = r"[\t\n\f\r ]"  # RE2's \s, as the native rules spell it
_NOT_S = r"[^\t\n\f\r ]"
_KEY_NAMES = (
    r"password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|"
    r"refresh[_-]?token|(?:signing|encryption|master|account)[_-]?key"
)
_VALUE_START = r"[^\t\n\f\r \"',;\[\](){}$<=/~-]"

RULES: tuple[Rule, ...] = (
    Rule(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|$)",
    ),
    Rule(
        "base64_secret",
        r"(?:LS0tLS1CRUdJTiB(?:SU0EgUFJJVkFURSBLRVkt|QUklWQVRFIEtFWS0t|FQyBQUklWQVRFIEtFWS0t|"
        r"PUEVOU1NIIFBSSVZBVEUgS0VZLS0t|FTkNSWVBURUQgUFJJVkFURSBLRVkt|EU0EgUFJJVkFURSBLRVkt)|"
        r"eyJhdXRocyI6|ewogICJhdXRocyI6|ewoJImF1dGhz|eyAiYXV0aHMi|ewogICAgImF1dGhz)"
        r"[A-Za-z0-9+/]*(?:\r?\n[A-Za-z0-9+/]+)*={0,2}",
    ),
    Rule("aws_access_key_id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[0-9A-Z]{16}\b"),
    Rule("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
    Rule(
        "gitlab_token",
        r"\b(?:gl(?:pat|dt|ptt|rt|cbt|soat|ffct|oas|imt|agent|ft)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})",
    ),
    Rule("slack_token", r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}"),
    Rule("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
    Rule(
        "discord_webhook",
        r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/[0-9]+/[A-Za-z0-9_-]+",
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-api03-) keys share the prefix.
    Rule("sk_api_key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    Rule("stripe_key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    Rule("webhook_secret", r"\bwhsec_[A-Za-z0-9+/=_-]{24,}"),
    Rule("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    Rule(
        "oauth_token",
        r"\b(?:ya29\.[A-Za-z0-9_-]{20,}|1//0[A-Za-z0-9_-]{30,}|EAA[A-Za-z0-9]{80,}|"
        r"Atz[ar]\|[A-Za-z0-9_|-]{20,}|sl\.[A-Za-z0-9_-]{120,}|mfa\.[A-Za-z0-9_-]{80,})",
    ),
    Rule("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}"),
    Rule("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    Rule("pypi_token", r"\bpypi-Ag[A-Za-z0-9_-]{50,}"),
    Rule("docker_hub_token", r"\bdckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}"),
    Rule(
        "vendor_token",
        r"\b(?:CCIPAT_[A-Za-z0-9]{20,}_[a-f0-9]{40}|bkua_[a-f0-9]{40}|hv[sbr]\.[A-Za-z0-9_-]{24,}|"
        r"do[opr]_v1_[a-f0-9]{64}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2}|"
        r"sntr[ysu]_[A-Za-z0-9+/=_]{40,}|ATATT3[A-Za-z0-9_=-]{150,}|lin_api_[A-Za-z0-9]{40}|"
        r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|"
        r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|dapi[a-f0-9]{32}|rubygems_[a-f0-9]{48}|oy2[a-z0-9]{43}|"
        r"pul-[a-f0-9]{40}|dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,}|AGE-SECRET-KEY-1[0-9A-Z]{58}|"
        r"gsk_[A-Za-z0-9]{48,}|r8_[A-Za-z0-9]{37}|xai-[A-Za-z0-9]{70,}|pplx-[A-Za-z0-9]{48,}|"
        r"ntn_[A-Za-z0-9]{40,}|sbp_[a-f0-9]{40}|tskey-[a-z]+-[A-Za-z0-9]{8,}-[A-Za-z0-9]{16,}|"
        r"HRKU-[A-Za-z0-9_-]{60}|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,})",
    ),
    Rule("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    Rule(
        "registry_auth",
        r"[A-Za-z0-9+/]{12,}={0,2}",
        before=rf"\"(?:auth|identitytoken|registrytoken)\"{_S}*:{_S}*\"",
    ),
    Rule("telegram_bot_token", r"\b[0-9]{8,10}:AA[A-Za-z0-9_-]{30,}"),
    Rule(
        "discord_token",
        r"(?:MT|Mj|Mz|ND|NT|Nj|Nz|OD|OT)[A-Za-z0-9_-]{22,24}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}",
        before=r"\.run\([\t ]*[\"']",
    ),
    Rule("azure_client_secret", r"[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}"),
    Rule(
        "url_signature",
        r"[^\t\n\f\r &#\"'<>\[][^\t\n\f\r &#\"'<>]{7,}",
        before=r"(?i:[?&](?:X-Amz-Signature|X-Amz-Security-Token|X-Goog-Signature|sig|Signature)=)",
    ),
    Rule(
        "aws_secret",
        r"[A-Za-z0-9/+=]{16,}",
        before=rf"(?i:(?:secret[_-]?access[_-]?key|session[_-]?token|security[_-]?token)[\"']?{_S}*[:=]{_S}*[\"']?)",
    ),
    Rule(
        "azure_storage_key",
        r"[^\t\n\f\r ;\"'\[<$][^\t\n\f\r ;\"'<>]*",
        before=r"(?i:(?:AccountKey|SharedAccessKey|SharedAccessSignature)[\t ]*=[\t ]*)",
    ),
    Rule("bearer_token", r"[A-Za-z0-9._~+/-]{16,}=*", before=rf"(?i:\bbearer{_S}+)"),
    Rule(
        "authorization_header",
        r"[A-Za-z0-9+/._~-]{6,}=*",
        before=r"(?i:authorization[\"']?[\t ]*[:=][\t ]*[\"']?(?:basic|token|bot|apikey|sso-key)[\t ]+)",
    ),
    Rule(
        "url_password",
        r"[^\t\n\f\r /\[\"'`<>][^\t\n\f\r /\"'`<>]*",
        before=r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\t\n\f\r :/@]*:",
        after="@",
    ),
    Rule(
        "cli_password",
        r"[^\t\n\f\r \"'\[$<{-][^\t\n\f\r \"']*",
        before=(
            r"(?:(?i:\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|mysqlsh))\b[^\n]*?[\t ]-p[\"']?|"
            r"\b(?:sshpass|mongo|mongosh)\b[^\n]*?[\t ]-p[\t ]+|\bredis-cli\b[^\n]*?[\t ]-a[\t ]+|"
            r"\b(?:docker|podman|nerdctl|buildah|skopeo|helm|oras)[\t ]+(?:[a-z]+[\t ]+)?login\b[^\n]*?[\t ]"
            r"(?:-p|--password)[\t =]+|[\t ]--(?:password|passwd|pass)(?:=|[\t ]+)[\"']?|"
            r"\bcurl\b[^\n]*?[\t ](?:-u|--user)[\t =]*[\"']?[^\t\n\f\r :\"']*:)"
        ),
    ),
    Rule(
        "netrc_password",
        rf"[^\t\n\f\r \[]{_NOT_S}*",
        before=(rf"\b(?:machine{_S}+{_NOT_S}+|default){_S}+(?:(?:login|account){_S}+{_NOT_S}+{_S}+)*password{_S}+"),
    ),
    # A key name anywhere in a snake/kebab-case name: DB_PASSWORD, client_secret, aws_secret_access_key.
    Rule(
        "password_assignment",
        rf"{_VALUE_START}[^\t\n\f\r \"',;]{{7,}}",
        before=rf"(?i:(?:{_KEY_NAMES})(?:[_-][a-z0-9]+)*[\"']?{_S}*[:=]{_S}*[\"']?)",
        code_aware=True,
    ),
    Rule(
        "short_password",
        rf"{_VALUE_START}[^\t\n\f\r \"',;]{{0,6}}",
        before=r"(?i:(?:password|passwd)[\"']?[\t ]*[:=][\t ]*[\"']?)",
        after=r"(?:[\t\n\f\r \"',;]|$)",
        code_aware=True,
    ),
    Rule(
        "token_assignment",
        r"[A-Za-z0-9][^\t\n\f\r \"',;\[]{15,}",
        before=r"(?i:token[\"']?[\t ]*[:=][\t ]*[\"']?)",
        after=r"(?:[\t\n\f\r \"',;]|$)",
        code_aware=True,
    ),
)

_NOT_SECRETS = frozenset(
    (
        b"none null nil true false undefined str string bytes int bool any object optional required hidden empty "
        b"unset the a an is it to and or of for in not no yes set see your this here password passwd token"
    ).split()
)
_CREDENTIAL_WORDS = (b"password", b"passwd", b"secret", b"token", b"key", b"auth")
_IDENTIFIER_PATH = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def reads_as_code(value: bytes) -> bool:
    """An unquoted value that is a call or subscript, a credential variable's name with a dot or an underscore,
    or a common word, each possibly followed by closing brackets."""
    value = value.rstrip(b")]}")
    lower = value.lower()
    if lower in _NOT_SECRETS:
        return True
    path = _IDENTIFIER_PATH.match(value)
    if path is None:
        return False
    if path.end() < len(value):
        return value[path.end() : path.end() + 1] in (b"(", b"[")
    last = lower.rsplit(b".", 1)[-1]
    return (b"." in value or b"_" in value) and any(word in last for word in _CREDENTIAL_WORDS)


# Group 1 is the context kept before the secret, group 2 the context kept after it.
_PATTERNS = tuple(re2.compile(f"({rule.before}){rule.secret}({rule.after})") for rule in RULES)


def _detector() -> re2.Set:
    # RE2::Set answers "which rules match" with its DFA alone, in one scan for all
    # rules; locating groups needs RE2's slower submatch engines, so that only runs
    # for the rules that hit.
    detector = re2.Set.SearchSet()
    for rule in RULES:
        detector.Add(f"{rule.before}{rule.secret}{rule.after}")
    detector.Compile()
    return detector


_DETECTOR = _detector()


def redact_fields(fields: tuple[str, ...], counts: Counter[str]) -> tuple[str, ...]:
    """`redact` each field on its own (rules that end at the end of a text, `$`, see where each field ends)."""
    return tuple(redact(field, counts) for field in fields)


def redact(text: str, counts: Counter[str]) -> str:
    """Return `text` with every secret replaced; add one to `counts[rule]` per replacement.

    Rules apply in order, so a specific shape (`sk-...`) is named before a generic
    one (`api_key=...`) could claim the same value.
    """
    data = text.encode()
    hits = _DETECTOR.Match(data)
    if hits is None:
        return text
    for index in sorted(hits):
        data = _substitute(index, data, counts)
    return data.decode()


def _substitute(index: int, data: bytes, counts: Counter[str]) -> bytes:
    rule = RULES[index]
    marker = f"[REDACTED:{rule.name}]".encode()
    pieces: list[bytes] = []
    position = 0
    for match in _PATTERNS[index].finditer(data):
        start, end = match.span()
        quoted = match.group(1)[-1:] in (b'"', b"'")
        if rule.code_aware and not quoted and reads_as_code(data[match.end(1) : match.start(2)]):
            continue
        pieces += (data[position:start], match.group(1), marker, match.group(2))
        position = end
        counts[rule.name] += 1
    pieces.append(data[position:])
    return b"".join(pieces)
