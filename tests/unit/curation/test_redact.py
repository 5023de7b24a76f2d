import random
from collections import Counter

import finetune_curate_native as native
import pytest

import sessioncorpus as corpus


def redact(text: str, counts: Counter[str]) -> str:
    redacted, found = native.redact(text)
    counts.update(found)
    return redacted


# Fake credentials in each shape; none is real.
SECRETS = {
    "private_key": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"
    ),
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "a1B2" * 9,
    "gitlab_token": "glpat-" + "x9Y8z7" * 4,
    "slack_token": "xoxb-123456789012-123456789012-abcdefABCDEF1234",
    "slack_webhook": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    "sk_api_key": "sk-proj-" + "Q" * 40,
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "google_api_key": "AIza" + "SyA-" * 8 + "abc",
    "huggingface_token": "hf_" + "abcdefghij" * 3 + "klmn",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}


@pytest.mark.parametrize(("rule", "secret"), SECRETS.items())
def test_each_provider_shape_is_redacted(rule: str, secret: str) -> None:
    counts: Counter[str] = Counter()
    text = redact(f"config dump:\n  value: {secret}\nend", counts)
    assert secret not in text
    assert f"[REDACTED:{rule}]" in text
    assert text.startswith("config dump:\n  value: ") and text.endswith("\nend")
    assert counts == {rule: 1}


@pytest.mark.parametrize(
    ("text", "expected", "rule"),
    [
        ("curl -H 'Authorization: Bearer abcDEF123456ghiJKL789'", "Bearer [REDACTED:bearer_token]'", "bearer_token"),
        ("postgres://admin:hunter2hunter@db:5432/app", "postgres://admin:[REDACTED:url_password]@db", "url_password"),
        ('DB_PASSWORD="correct-horse-battery"', 'DB_PASSWORD="[REDACTED:password_assignment]"', "password_assignment"),
        ("client_secret: 8f0e9a7b6c5d4e3f", "client_secret: [REDACTED:password_assignment]", "password_assignment"),
    ],
)
def test_context_is_kept_around_the_secret(text: str, expected: str, rule: str) -> None:
    counts: Counter[str] = Counter()
    assert expected in redact(text, counts)
    assert counts == {rule: 1}


def test_truncated_private_key_is_redacted_to_the_end() -> None:
    counts: Counter[str] = Counter()
    text = redact("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow", counts)
    assert text == "key:\n[REDACTED:private_key]"


def test_several_secrets_are_all_counted() -> None:
    counts: Counter[str] = Counter()
    text = redact(f"{SECRETS['github_token']} and {SECRETS['github_token']} and {SECRETS['jwt']}", counts)
    assert counts == {"github_token": 2, "jwt": 1}
    assert "ghp_" not in text and "eyJ" not in text


def test_an_already_redacted_value_is_not_counted_again() -> None:
    counts: Counter[str] = Counter()
    once = redact(f"api_key={SECRETS['sk_api_key']}", counts)
    assert redact(once, counts) == once
    # The specific rule names the secret before the generic assignment rule sees it.
    assert counts == {"sk_api_key": 1}


def test_ordinary_agent_text_is_left_alone() -> None:
    text = (
        "tests/test_login.py::test_password_reset PASSED\n"
        "def refresh(token: str) -> None:\n    session.token_ttl = 3600\n"
        "See https://docs.python.org/3/library/re.html and ask the user for the password later.\n"
        "The task-runner and disk-usage checks passed; max_tokens = 2048."
    )
    counts: Counter[str] = Counter()
    assert redact(text, counts) == text
    assert not counts


def test_generated_corpus_secrets_are_all_redacted() -> None:
    rng = random.Random(3)
    for _ in range(300):
        secret = corpus.fake_secret(rng)
        counts: Counter[str] = Counter()
        text = redact(f"export TOKEN={secret}\n", counts)
        assert counts.total() == 1, secret
        assert "[REDACTED:" in text
