"""Fake credentials in the contexts people paste them in, and look-alikes that are not credentials.

`leak(rng)` returns a snippet (a CLI's output, a config file, a command line, a header) and the
secret values in it: after redaction none of them may remain. `trap(rng)` returns a snippet that
holds no secret but resembles one (git SHAs, UUIDs, base64 images, code that names a password
without holding one, port flags, URLs with ports): redaction must leave it unchanged. The session
corpus (sessioncorpus.py) plants both, so the curation benchmark measures recall and false positives.
Every value is random: none is a real credential.
"""

from __future__ import annotations

import base64
import random
import string
import uuid
from collections.abc import Callable

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
BASE64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"

Leak = tuple[str, list[str]]


def pick(rng: random.Random, chars: str, count: int) -> str:
    return "".join(rng.choice(chars) for _ in range(count))


def _b64(rng: random.Random, raw_bytes: int) -> str:
    return base64.b64encode(rng.randbytes(raw_bytes)).decode()


def _aws_sts(rng: random.Random) -> Leak:
    key_id = "ASIA" + pick(rng, string.ascii_uppercase + string.digits, 16)
    secret, session = pick(rng, BASE64, 40), "FwoGZXIvYXdzE" + pick(rng, BASE64, 300)
    text = (
        '$ aws sts get-session-token --duration-seconds 3600\n{\n    "Credentials": {\n'
        f'        "AccessKeyId": "{key_id}",\n        "SecretAccessKey": "{secret}",\n'
        f'        "SessionToken": "{session}",\n        "Expiration": "2026-12-03T12:00:00+00:00"\n    }}\n}}'
    )
    return text, [key_id, secret, session]


def _aws_export(rng: random.Random) -> Leak:
    key_id = "ASIA" + pick(rng, string.ascii_uppercase + string.digits, 16)
    secret, session = pick(rng, BASE64, 40), "IQoJb3JpZ2luX2Vj" + pick(rng, BASE64, 200)
    if rng.random() < 0.5:
        text = (
            f'$ aws configure export-credentials\n{{\n  "Version": 1,\n  "AccessKeyId": "{key_id}",\n'
            f'  "SecretAccessKey": "{secret}",\n  "SessionToken": "{session}"\n}}'
        )
    else:
        text = (
            f"$ aws configure export-credentials --format env\nexport AWS_ACCESS_KEY_ID={key_id}\n"
            f"export AWS_SECRET_ACCESS_KEY={secret}\nexport AWS_SESSION_TOKEN={session}"
        )
    return text, [key_id, secret, session]


def _gcp_service_account(rng: random.Random) -> Leak:
    body = "\\n".join(pick(rng, BASE64, 64) for _ in range(6))
    text = (
        '$ cat sa.json\n{\n  "type": "service_account",\n  "project_id": "ml-prod",\n'
        f'  "private_key_id": "{pick(rng, HEX, 40)}",\n'
        f'  "private_key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n",\n'
        '  "client_email": "trainer@ml-prod.iam.gserviceaccount.com"\n}'
    )
    return text, [body]


def _azure(rng: random.Random) -> Leak:
    choice = rng.randrange(3)
    if choice == 0:
        secret = pick(rng, ALNUM, 3) + rng.choice(string.digits) + "Q~" + pick(rng, ALNUM + "_~.-", 34)
        text = f'$ az ad sp create-for-rbac --name ci\n{{\n  "appId": "{uuid.UUID(int=rng.getrandbits(128))}",\n'
        return text + f'  "password": "{secret}",\n  "tenant": "{uuid.UUID(int=rng.getrandbits(128))}"\n}}', [secret]
    if choice == 1:
        key = _b64(rng, 64)
        text = f"AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=logs;AccountKey={key};"
        return text + "EndpointSuffix=core.windows.net", [key]
    sig = _b64(rng, 32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    url = f"https://logs.blob.core.windows.net/raw/s.jsonl?sv=2022-11-02&ss=b&sp=r&se=2026-12-31&sig={sig}"
    return f"curl -o s.jsonl '{url}'", [sig]


def _signed_url(rng: random.Random) -> Leak:
    signature = pick(rng, HEX, 64)
    if rng.random() < 0.5:
        return (
            "https://bucket.s3.amazonaws.com/model.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261203T000000Z"
            f"&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
            [signature],
        )
    return (
        "https://storage.googleapis.com/ml-data/x.parquet?X-Goog-Algorithm=GOOG4-RSA-SHA256"
        f"&X-Goog-Date=20261203T000000Z&X-Goog-Expires=900&X-Goog-Signature={signature}",
        [signature],
    )


def _prefixed_token(rng: random.Random) -> Leak:
    token = rng.choice(
        [
            lambda: "glpat-" + pick(rng, URLSAFE, 20),
            lambda: "glrt-" + pick(rng, URLSAFE, 24),
            lambda: "npm_" + pick(rng, ALNUM, 36),
            lambda: "pypi-AgEIcHlwaS5vcmc" + pick(rng, URLSAFE, 70),
            lambda: (
                "xoxb-" + pick(rng, string.digits, 12) + "-" + pick(rng, string.digits, 13) + "-" + pick(rng, ALNUM, 24)
            ),
            lambda: "xapp-1-A" + pick(rng, string.ascii_uppercase + string.digits, 10) + "-" + pick(rng, HEX, 64),
            lambda: "dckr_pat_" + pick(rng, URLSAFE, 27),
            lambda: "whsec_" + pick(rng, ALNUM, 32),
            lambda: "ya29.a0" + pick(rng, URLSAFE, 120),
            lambda: "hvs." + pick(rng, URLSAFE, 90),
            lambda: "dop_v1_" + pick(rng, HEX, 64),
            lambda: str(rng.randint(10**8, 10**10 - 1)) + ":AA" + pick(rng, URLSAFE, 33),
            lambda: "sk-ant-api03-" + pick(rng, URLSAFE, 90),
            lambda: "ghp_" + pick(rng, ALNUM, 36),
        ]
    )()
    context = rng.choice(["export CI_TOKEN={}", "token = '{}'", "Using {} for the registry.", "  api: {}"])
    return context.format(token), [token]


def _discord(rng: random.Random) -> Leak:
    token = "MT" + pick(rng, ALNUM, 24) + "." + pick(rng, URLSAFE, 6) + "." + pick(rng, URLSAFE, 38)
    context = rng.choice(["client.run('{}')", 'bot.run("{}")', "DISCORD_TOKEN={}", "Authorization: Bot {}"])
    return context.format(token), [token]


def _database_url(rng: random.Random) -> Leak:
    password = pick(rng, ALNUM, 6) + rng.choice("@:!#%^*") + pick(rng, ALNUM, 6)
    user = rng.choice(["", "app", "admin"])
    scheme = rng.choice(["postgres", "postgresql+psycopg", "mysql", "redis", "mongodb+srv", "amqp"])
    return f"DATABASE_URL={scheme}://{user}:{password}@db.internal:5432/app", [password]


def _cli_password(rng: random.Random) -> Leak:
    password = pick(rng, ALNUM, rng.randint(5, 14))
    form = rng.choice(
        [
            "mysql -h db -u root -p{} app < dump.sql",
            "mysqldump --single-transaction -u backup -p'{}' app > app.sql",
            "PGPASSWORD={} psql -h db -U postgres -c 'select 1'",
            "pg_dump --dbname=app --password {} > out.sql",
            "sshpass -p {} ssh deploy@10.0.0.4",
            "docker login -u ci -p {} registry.example.com",
            "redis-cli -h cache -a {} ping",
            "curl -u admin:{} https://jenkins.internal/api/json",
        ]
    )
    return "$ " + form.format(password), [password]


def _config_password(rng: random.Random) -> Leak:
    password = pick(rng, ALNUM + "!#%&*", rng.randint(4, 16))
    form = rng.choice(
        [
            "database:\n  host: db\n  user: app\n  password: {}\n",
            '{{"db": {{"user": "app", "password": "{}"}}}}',
            "[client]\nuser = app\npassword = {}\n",
            "machine api.example.com login deploy password {}",
            "machine git.internal\n  login ci\n  password {}",
            "DB_PASSWORD={}",
            "POSTGRES_PASSWORD: '{}'",
        ]
    )
    return form.format(password), [password]


def _http_header(rng: random.Random) -> Leak:
    if rng.random() < 0.5:
        credentials = base64.b64encode(f"admin:{pick(rng, ALNUM, 12)}".encode()).decode()
        return f"curl -H 'Authorization: Basic {credentials}' https://api.internal/v1", [credentials]
    token = pick(rng, ALNUM, 40)
    return f'headers = {{"Authorization": "Bearer {token}"}}', [token]


def _kubeconfig(rng: random.Random) -> Leak:
    key = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\n" + rng.randbytes(90)).decode()
    token = pick(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 6) + "." + pick(rng, HEX, 16)
    text = (
        "users:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n"
        f"    client-key-data: {key}\n- name: bootstrap\n  user:\n    token: {token}"
    )
    return text, [key, token]


def _registry_auth(rng: random.Random) -> Leak:
    auth = base64.b64encode(f"ci:{pick(rng, ALNUM, 20)}".encode()).decode()
    text = (
        f'$ cat ~/.docker/config.json\n{{\n  "auths": {{\n    "ghcr.io": {{\n      "auth": "{auth}"\n    }}\n  }}\n}}'
    )
    return text, [auth]


LEAKS: list[Callable[[random.Random], Leak]] = [
    _aws_sts,
    _aws_export,
    _gcp_service_account,
    _azure,
    _signed_url,
    _prefixed_token,
    _discord,
    _database_url,
    _cli_password,
    _config_password,
    _http_header,
    _kubeconfig,
    _registry_auth,
]


def leak(rng: random.Random) -> Leak:
    """A credential in one of the contexts the curator must redact, and the secret values it holds."""
    return rng.choice(LEAKS)(rng)


def _image(rng: random.Random) -> str:
    return f'<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{_b64(rng, rng.randint(60, 300))}">'


TRAPS: list[Callable[[random.Random], str]] = [
    lambda rng: f"commit {pick(rng, HEX, 40)}\nMerge: {pick(rng, HEX, 7)} {pick(rng, HEX, 7)}",
    lambda rng: f"request_id={uuid.UUID(int=rng.getrandbits(128))} trace={pick(rng, HEX, 32)}",
    lambda rng: f"image: ghcr.io/acme/api@sha256:{pick(rng, HEX, 64)}",
    _image,
    lambda rng: "def check_password(password: str) -> bool:\n    return bcrypt.checkpw(password.encode(), stored)",
    lambda rng: 'password = request.form["password"]\napi_key = os.environ["OPENAI_API_KEY"]',
    lambda rng: "self.password = password\nif not password:\n    raise ValueError('password required')",
    lambda rng: "user = User(name=name, password=password)\ntoken = tokenizer.encode(text)",
    lambda rng: "password: str = Field(min_length=12)\ntoken: Optional[str] = None",
    lambda rng: "env:\n- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: password}",
    lambda rng: "password: ${DB_PASSWORD}\ntoken: ${{ secrets.GITHUB_TOKEN }}",
    lambda rng: f"$ docker run -p {rng.randint(3000, 9000)}:80 nginx\n$ ssh -p 2222 deploy@bastion",
    lambda rng: "$ mysql -u root -p\nEnter password:\n$ kubectl patch deploy api -p '{\"spec\":{}}'",
    lambda rng: f"Serving on http://localhost:{rng.randint(3000, 9000)}/ (vite: /@vite/client)",
    lambda rng: "git@github.com:acme/payments-api.git\nhttps://github.com/acme/payments-api/pull/42",
    lambda rng: "Pass the bearer token in the Authorization header; the basic plan has no SSO.",
    lambda rng: f"max_tokens = {rng.choice([256, 1024, 4096])}\ntoken_count: {rng.randint(10, 9999)}",
    lambda rng: (
        f"DATABASE_URL=postgres://app@db.internal:5432/app\nREDIS_URL=redis://cache:{rng.randint(1000, 9999)}/0"
    ),
]


def trap(rng: random.Random) -> str:
    """A snippet that resembles a credential but holds none: redaction must leave it unchanged."""
    return rng.choice(TRAPS)(rng)
