"""Each family of credentials people paste into agent sessions, in the context it comes in, and look-alikes
that must stay as they are. All values are made up."""

from __future__ import annotations

import random
from collections import Counter
from typing import NamedTuple

import finetune_curate_native as native
import pytest

import sessionleaks

from . import oracle

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SESSION = "FwoGZXIvYXdzEBYaDExAmPlE+sEsSiOnToKeN/Ab1234567890abcdefghijklmnopqrstuvwxyz=="
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
B64_RSA_KEY = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVBMnhYeVp6"
DOCKER_AUTH = "Y2k6Z2hwX2FCY0RlRmdIaUprTG1Ob1BxUnNUdVZ3WHl6"


class Case(NamedTuple):
    text: str
    counts: dict[str, int]
    secrets: tuple[str, ...]


CASES: dict[str, Case] = {
    "aws sts get-session-token": Case(
        f'{{"Credentials": {{"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": "{AWS_SECRET}",\n'
        f'  "SessionToken": "{AWS_SESSION}", "Expiration": "2026-12-03T12:00:00Z"}}}}',
        {"aws_access_key_id": 1, "aws_secret": 2},
        ("ASIAY34FZKBOKMUTVV7A", AWS_SECRET, AWS_SESSION),
    ),
    "aws configure export-credentials --format env": Case(
        f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\nexport AWS_SESSION_TOKEN={AWS_SESSION}",
        {"aws_secret": 2},
        (AWS_SECRET, AWS_SESSION),
    ),
    "~/.aws/credentials": Case(f"[default]\naws_secret_access_key = {AWS_SECRET}", {"aws_secret": 1}, (AWS_SECRET,)),
    "GCP service-account JSON": Case(
        '{"type": "service_account", "private_key_id": "3f786850e387550fdab836ed7e6dc881de23001b", '
        f'"private_key": "-----BEGIN PRIVATE KEY-----\\n{PEM_BODY}\\n-----END PRIVATE KEY-----\\n"}}',
        {"private_key": 1},
        (PEM_BODY,),
    ),
    "Azure client secret": Case(
        '{"appId": "x", "password": "Zx98Q~AbCdEfGhIjKlMnOpQrStUvWxYz0123456_"}',
        {"azure_client_secret": 1},
        ("AbCdEfGhIjKlMnOpQrStUvWxYz",),
    ),
    "Azure Storage connection string": Case(
        "DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsu"
        "Fq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
        {"azure_storage_key": 1},
        ("Eby8vdM02xNOcqFlqUwJ", "KBHBeksoGMGw=="),
    ),
    "Azure Service Bus SharedAccessKey": Case(
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=c2VjcmV0a2V5c2VjcmV0a2V5PQ=",
        {"azure_storage_key": 1},
        ("c2VjcmV0a2V5c2VjcmV0a2V5PQ=",),
    ),
    "Azure SAS URL": Case(
        "https://a.blob.core.windows.net/c/b.jsonl?sv=2022-11-02&sp=r&se=2026-12-31&sig=Ab12Cd34Ef56Gh78%2BIj90%3D",
        {"url_signature": 1},
        ("Ab12Cd34Ef56Gh78",),
    ),
    "S3 pre-signed URL": Case(
        "https://b.s3.amazonaws.com/m.bin?X-Amz-Date=20261203T000000Z&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE"
        "&X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        {"url_signature": 2},
        ("IQoJb3JpZ2luX2VjEXAMPLE", "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"),
    ),
    "GCS signed URL": Case(
        "https://storage.googleapis.com/b/o?X-Goog-Date=20261203T000000Z&X-Goog-Signature=0a1b2c3d4e5f60718293a4b5c6d7",
        {"url_signature": 1},
        ("0a1b2c3d4e5f60718293a4b5c6d7",),
    ),
    "GitLab runner token": Case("glrt-t3_AbCdEfGhIjKlMnOpQrSt", {"gitlab_token": 1}, ("AbCdEfGhIjKlMnOpQrSt",)),
    "npm": Case(
        "//registry.npmjs.org/:_authToken=npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        {"npm_token": 1},
        ("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",),
    ),
    "PyPI": Case(
        "password = pypi-AgEIcHlwaS5vcmcCJGE4ZGQwNjE1LTk3YjQtNGRiOC04YjE2LTRkYTM2ZWM5OTcxMgACKlsz",
        {"pypi_token": 1},
        ("AgEIcHlwaS5vcmcCJGE4ZGQwNjE1",),
    ),
    "Slack app token": Case(
        "SLACK_APP_TOKEN=xapp-1-A0123456789-1234567890123-abcdef0123456789", {"slack_token": 1}, ("A0123456789",)
    ),
    "Discord bot token": Case(
        "client.run('MTA1NjM4OTQxMjM0NTY3ODkwMQ.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab')",
        {"discord_token": 1},
        ("MTA1NjM4OTQxMjM0NTY3ODkwMQ", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"),
    ),
    "Discord bot token in an environment file": Case(
        "DISCORD_TOKEN=MTA1NjM4OTQxMjM0NTY3ODkwMQ.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab",
        {"token_assignment": 1},
        ("MTA1NjM4OTQxMjM0NTY3ODkwMQ", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"),
    ),
    "Discord webhook": Case(
        "https://discord.com/api/webhooks/1234567890/AbCdEfGhIjKl-MnOpQrStUvWxYz_0123456789",
        {"discord_webhook": 1},
        ("AbCdEfGhIjKl-MnOpQrStUvWxYz_0123456789",),
    ),
    "Telegram bot token": Case(
        "bot = Bot(123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw)",
        {"telegram_bot_token": 1},
        ("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",),
    ),
    "Docker Hub": Case(
        "docker login -u ci --password-stdin <<< dckr_pat_AbCdEfGhIjKlMnOpQrStUvWxYz0",
        {"docker_hub_token": 1},
        ("AbCdEfGhIjKlMnOpQrStUvWxYz0",),
    ),
    "Vault": Case(
        "VAULT_TOKEN=hvs.CAESIAbCdEfGhIjKlMnOpQrStUvWxYz", {"vendor_token": 1}, ("CAESIAbCdEfGhIjKlMnOpQrStUvWxYz",)
    ),
    "Stripe webhook secret": Case(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", {"webhook_secret": 1}, ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)
    ),
    "Slack signing secret": Case(
        "SLACK_SIGNING_SECRET=8f742231b10e8888abcd99yyyzzz85a5",
        {"password_assignment": 1},
        ("8f742231b10e8888abcd99yyyzzz85a5",),
    ),
    "Google OAuth access token": Case(
        "ya29.a0AfB_byC1234567890abcdefghijklmnopqrstuvwxyz", {"oauth_token": 1}, ("a0AfB_byC1234567890abcdefgh",)
    ),
    "Google refresh token": Case(
        '"refresh": "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"', {"oauth_token": 1}, ("AbCdEfGhIjKlMnOpQrStUvWxYz",)
    ),
    "database URL with an empty user": Case("redis://:s3cr3tPass@cache:6379/0", {"url_password": 1}, ("s3cr3tPass",)),
    "database URL with @ and : in the password": Case(
        "postgresql+psycopg://app:p@ss:w0rd!@db.internal:5432/app", {"url_password": 1}, ("p@ss", "w0rd!")
    ),
    "mysql -pXXX": Case("$ mysql -h db -u root -pS3cret app < dump.sql", {"cli_password": 1}, ("S3cret",)),
    "mysqldump -p'XXX'": Case("mysqldump -u backup -p'S3cret' app", {"cli_password": 1}, ("S3cret",)),
    "--password X": Case("helm repo add acme https://c.acme.io --password hunter2", {"cli_password": 1}, ("hunter2",)),
    "--password=X": Case("$ app --user=ci --password=hunter2", {"cli_password": 1}, ("hunter2",)),
    "sshpass -p": Case("sshpass -p hunter2 ssh deploy@10.0.0.4", {"cli_password": 1}, ("hunter2",)),
    "docker login -p": Case("docker login -u ci -p hunter2 registry.example.com", {"cli_password": 1}, ("hunter2",)),
    "redis-cli -a": Case("redis-cli -h cache -a hunter2 ping", {"cli_password": 1}, ("hunter2",)),
    "curl -u": Case("curl -u admin:hunter2 https://jenkins/api/json", {"cli_password": 1}, ("hunter2",)),
    "PGPASSWORD=": Case("PGPASSWORD=pg psql -h db -U postgres", {"short_password": 1}, ("=pg ",)),
    "YAML password": Case("db:\n  user: app\n  password: admin\n", {"short_password": 1}, ("admin",)),
    "JSON password": Case('{"user": "app", "password": "root"}', {"short_password": 1}, ("root",)),
    "ini password": Case("[client]\npassword = hunter2hunter2\n", {"password_assignment": 1}, ("hunter2hunter2",)),
    "short password=": Case("connect(password='abc12')", {"short_password": 1}, ("abc12",)),
    ".netrc on one line": Case(
        "machine api.heroku.com login me@example.com password 01234567-89ab", {"netrc_password": 1}, ("01234567-89ab",)
    ),
    ".netrc on several lines": Case(
        "machine git.internal\n  login ci\n  password hunter2\n", {"netrc_password": 1}, ("hunter2",)
    ),
    "HTTP Basic": Case(
        "curl -H 'Authorization: Basic YWRtaW46aHVudGVyMg==' https://x",
        {"authorization_header": 1},
        ("YWRtaW46aHVudGVyMg",),
    ),
    "Authorization: token": Case(
        '{"Authorization": "token 0123456789abcdef0123"}', {"authorization_header": 1}, ("0123456789abcdef0123",)
    ),
    "HTTP Bearer": Case(
        '-H "Authorization: Bearer abcDEF123456ghiJKL789"', {"bearer_token": 1}, ("abcDEF123456ghiJKL789",)
    ),
    "kubeconfig client-key-data": Case(
        f"    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    client-key-data: {B64_RSA_KEY}",
        {"base64_secret": 1},
        (B64_RSA_KEY[20:],),
    ),
    "kubeconfig token": Case(
        "  user:\n    token: abcdef.0123456789abcdef\n", {"token_assignment": 1}, ("abcdef.0123",)
    ),
    "aligned token assignment": Case(
        'api_token      = "0123456789abcdefghij"\nregion         = "eu-west-1"',
        {"token_assignment": 1},
        ("0123456789abcdefghij",),
    ),
    "MySQL in capitals": Case("MySQL -u root -pS3cretPw app", {"cli_password": 1}, ("S3cretPw",)),
    # Unicode case folding: long s and the Kelvin sign match s and k in the key names, with no ASCII anchor.
    "key names with letters that fold to ASCII": Case(
        "PA\u017f\u017fWORD=hunter2\napi_\u212aey: Zm9vYmFyYmF6cXV4",
        {"short_password": 1, "password_assignment": 1},
        ("hunter2", "Zm9vYmFyYmF6cXV4"),
    ),
    ".dockerconfigjson auth": Case(
        f'{{"auths": {{"ghcr.io": {{"auth": "{DOCKER_AUTH}"}}}}}}', {"registry_auth": 1}, (DOCKER_AUTH,)
    ),
    ".dockerconfigjson in a Secret": Case(
        "data:\n  .dockerconfigjson: eyJhdXRocyI6eyJnaGNyLmlvIjp7ImF1dGgiOiJZMms2YzJWamNtVjAifX19",
        {"base64_secret": 1},
        ("eyJnaGNyLmlvIjp7ImF1dGgiOiJZMms2YzJWamNtVjAifX19",),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_format_is_redacted_in_context(case: Case) -> None:
    redacted, counts = native.redact(case.text)
    assert counts == case.counts, redacted
    for secret in case.secrets:
        assert secret not in redacted, redacted
    assert oracle.redact(case.text, Counter()) == redacted


# Look-alikes of credentials that are not credentials: redaction must leave each unchanged.
NOT_SECRETS = {
    "git SHAs": "commit 3f786850e387550fdab836ed7e6dc881de23001b\nMerge: 9fceb02 d6cd1e2",
    "UUIDs": "request 550e8400-e29b-41d4-a716-446655440000 failed; trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "image digest": "ghcr.io/acme/api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "certificate data": "client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM4akNDQWRxZ0F3",
    "password parameter": "def check_password(password: str) -> bool:\n    return bcrypt.checkpw(password.encode(), h)",
    "password from a request": 'password = request.form["password"]\napi_key = os.environ["OPENAI_API_KEY"]',
    "password passed on": (
        "self.password = password\nuser = User(name=name, password=password)\nif not password:\n    return"
    ),
    "credential variables": "password = hashed_password\nsecret = settings.SECRET_KEY\napi_key=args.api_key,",
    "calls": (
        "password = getpass.getpass('Password: ')\ntoken = tokenizer.encode(text)\nsecret = vault.read_secret(path)"
    ),
    "type annotations": "password: str = Field(min_length=12)\ntoken: Optional[str] = None\npassword: string;",
    "templates and references": (
        "password: ${DB_PASSWORD}\ntoken: ${{ secrets.GITHUB_TOKEN }}\npassword: {{ .Values.pw }}"
    ),
    "paths": "password_file: /run/secrets/db_password\nPWD=/home/agent/src\nsecret: ~/.config/app/secret.json",
    "comparisons": 'if password == "":\n    password := os.Getenv("DB_PASSWORD")',
    "secretKeyRef": "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: password}",
    "port and patch flags": "docker run -p 8080:80 nginx\nssh -p 2222 deploy@bastion\nkubectl patch deploy api -p '{}'",
    "mysql asking for the password": "$ mysql -u root -p\nEnter password:\n$ mysql -u root -p app",
    "URLs with ports": "http://localhost:5173/@vite/client\nredis://cache:6379/0\npostgres://app@db:5432/app",
    "git remotes": "git@github.com:acme/payments-api.git\nssh://git@github.com:22/acme/api.git",
    "prose": "Pass the bearer token in the Authorization header; the basic plan has no SSO. Enter the password: it is",
    "token counts": 'max_tokens = 4096\ntoken_count: 1234\n"tokens": 12345678901234567890',
    "docker stdin": "echo $CR_PAT | docker login ghcr.io -u ci --password-stdin",
    "curl user without password": (
        "curl -u admin https://jenkins/api/json\ncurl --user-agent 'Mozilla/5.0 (X11; Linux)' x"
    ),
    "registry auth object": '{"auth": {"type": "oauth2"}, "auths": {}}',
}


@pytest.mark.parametrize("text", NOT_SECRETS.values(), ids=NOT_SECRETS.keys())
def test_look_alikes_are_left_alone(text: str) -> None:
    assert native.redact(text) == (text, {})
    assert oracle.redact(text, Counter()) == text


def test_a_base64_image_is_left_alone() -> None:
    rng = random.Random(7)
    for _ in range(200):
        text = sessionleaks.TRAPS[3](rng)
        assert native.redact(text) == (text, {})


def test_a_real_looking_password_with_code_characters_is_still_redacted() -> None:
    """Only unquoted values read as code: a quoted call-shaped value, or one with symbols, is a password."""
    for text, secret in [
        ('password = "get_pw()"', "get_pw()"),
        ("password = Tr0ub4dor&3(x)", "Tr0ub4dor&3(x)"),
        ("DB_PASSWORD=hunter2.Dog!", "hunter2.Dog!"),
    ]:
        redacted, counts = native.redact(text)
        assert secret not in redacted and sum(counts.values()) == 1, redacted


def test_generated_leaks_are_redacted_and_traps_left_alone() -> None:
    rng = random.Random(5)
    for _ in range(600):
        text, secrets = sessionleaks.leak(rng)
        redacted, counts = native.redact(text)
        assert counts and not any(secret in redacted for secret in secrets), redacted
        assert oracle.redact(text, Counter()) == redacted
    for _ in range(600):
        text = sessionleaks.trap(rng)
        assert native.redact(text) == (text, {})


def test_a_value_at_the_end_of_one_field_is_redacted_whatever_the_next_field_holds() -> None:
    """Each field is redacted on its own: `$` ends a value at the end of its field, not of the session."""
    raw = (
        b'{"id":"a","success_rate":1,"messages":[{"role":"user","content":"log in with password: admin"},'
        b'{"role":"tool","content":"token: abcdef.0123456789abcdef"},{"role":"assistant","content":"done"}]}'
    )
    assessed = native.Assessor(0.5, 0.0, False, None, False).assess_block("s", 1, raw, 0, len(raw), 1 << 20)
    candidate = assessed.candidate(0)
    assert candidate is not None
    assert candidate[5] == {"short_password": 1, "token_assignment": 1}
    assert b"admin" not in candidate[0] and b"0123456789abcdef" not in candidate[0]


def test_secrets_are_found_wherever_they_fall_in_a_text() -> None:
    """The anchor scan takes texts 64 bytes at a time (on CPUs with AVX-512 VBMI): anchors straddling those blocks,
    cut off by the text's end, or in another case must be found as the DFA and the oracle find them."""
    rng = random.Random(9)
    for _ in range(1500):
        text, _ = sessionleaks.leak(rng) if rng.random() < 0.7 else (sessionleaks.trap(rng), ())
        text = rng.choice([str, str.upper, str.lower, str.swapcase])(text)
        text = "x" * rng.randrange(0, 130) + text
        text = text[: rng.randrange(len(text) // 2, len(text) + 1)]
        assert native.redact(text)[0] == oracle.redact(text, Counter()), text
