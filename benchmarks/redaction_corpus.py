"""The redaction corpus: realistic secrets in realistic text, and look-alikes that are not secrets.

Every secret is generated fresh from a seeded random source in the shape its
provider issues (prefixes, lengths, alphabets), then put into text an agent
would record: a chat message, a ``.env`` file, a shell command, a JSON config,
a tool's output. The look-alikes are what such text holds that must stay as
it is: git SHAs, UUIDs, hashes, base64 images, long identifiers, code that
names a password without holding one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER_NUM = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Sample:
    """One text of the corpus.

    Attributes:
        kind: The secret's type (the placeholder a detector should use), or
            the look-alike's name for a text without a secret.
        text: The text.
        secret: The secret's text (empty for a look-alike).
    """

    kind: str
    text: str
    secret: str = ""


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _pem(rng: random.Random) -> str:
    label = rng.choice(["RSA ", "EC ", "", "OPENSSH ", "ENCRYPTED "])
    body = base64.b64encode(rng.randbytes(rng.choice([120, 240, 600]))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}PRIVATE KEY-----\n{lines}\n-----END {label}PRIVATE KEY-----"


def _jwt(rng: random.Random) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    header = part({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
    body = part(
        {"sub": str(rng.randint(1, 10**9)), "iat": rng.randint(1_600_000_000, 1_800_000_000)}
    )
    signature = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
    return f"{header}.{body}.{signature}"


def _discord(rng: random.Random) -> str:
    user = base64.b64encode(str(rng.randint(10**17, 10**18)).encode()).decode().rstrip("=")
    return f"{user}.{_pick(rng, URLSAFE, 6)}.{_pick(rng, URLSAFE, 38)}"


# type -> how to make one secret of it
SECRETS: dict[str, Callable[[random.Random], str]] = {
    "aws-access-key": lambda r: r.choice(["AKIA", "ASIA"]) + _pick(r, UPPER_NUM, 16),
    "google-api-key": lambda r: "AIza" + _pick(r, URLSAFE, 35),
    "github-token": lambda r: r.choice(["ghp_", "gho_", "ghs_"]) + _pick(r, ALNUM, 36),
    "github-fine-grained": lambda r: (
        "github_pat_" + _pick(r, ALNUM, 22) + "_" + _pick(r, ALNUM, 59)
    ),
    "gitlab-token": lambda r: "glpat-" + _pick(r, URLSAFE, 20),
    "slack-token": lambda r: (
        f"xox{r.choice('bpa')}-{r.randint(10**11, 10**12)}-"
        f"{r.randint(10**12, 10**13)}-{_pick(r, ALNUM, 24)}"
    ),
    "slack-webhook": lambda r: (
        "https://hooks.slack.com/services/T"
        + _pick(r, UPPER_NUM, 8)
        + "/B"
        + _pick(r, UPPER_NUM, 8)
        + "/"
        + _pick(r, ALNUM, 24)
    ),
    "discord-webhook": lambda r: (
        f"https://discord.com/api/webhooks/{r.randint(10**17, 10**18)}/" + _pick(r, URLSAFE, 68)
    ),
    "discord-token": _discord,
    "openai-api-key": lambda r: r.choice(["sk-", "sk-proj-"]) + _pick(r, URLSAFE, 48),
    "anthropic-api-key": lambda r: "sk-ant-api03-" + _pick(r, URLSAFE, 93) + "AA",
    "huggingface-token": lambda r: "hf_" + _pick(r, string.ascii_letters, 34),
    "stripe-key": lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _pick(r, ALNUM, 24),
    "twilio-api-key": lambda r: "SK" + _pick(r, HEX, 32),
    "sendgrid-api-key": lambda r: "SG." + _pick(r, URLSAFE, 22) + "." + _pick(r, URLSAFE, 43),
    "npm-token": lambda r: "npm_" + _pick(r, ALNUM, 36),
    "pypi-token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _pick(r, URLSAFE, 70),
    "jwt": _jwt,
    "private-key": _pem,
}

# Secrets known only by where they stand: (type, make the secret, make its text).
_PLACED: list[tuple[str, Callable[[random.Random], str], Callable[[str], str]]] = [
    (
        "aws-secret-key",
        lambda r: _pick(r, B64, 40),
        lambda s: f"aws_secret_access_key = {s}",
    ),
    (
        "aws-secret-key",
        lambda r: _pick(r, B64, 40),
        lambda s: f"export AWS_SECRET_ACCESS_KEY={s}",
    ),
    (
        "azure-storage-key",
        lambda r: _pick(r, B64, 86) + "==",
        lambda s: (
            "DefaultEndpointsProtocol=https;AccountName=prodlogs;"
            f"AccountKey={s};EndpointSuffix=core.windows.net"
        ),
    ),
    (
        "twilio-auth-token",
        lambda r: _pick(r, HEX, 32),
        lambda s: f"TWILIO_AUTH_TOKEN={s}",
    ),
    (
        "url-password",
        lambda r: _pick(r, ALNUM, 14),
        lambda s: f"DATABASE_URL=postgres://app_user:{s}@db.internal:5432/orders",
    ),
    (
        "url-password",
        lambda r: _pick(r, ALNUM + "!*", 12),
        lambda s: f"connect with mongodb+srv://admin:{s}@cluster0.x1y2z.mongodb.net/test",
    ),
    ("password", lambda r: _pick(r, ALNUM, 10), lambda s: f"DB_PASSWORD={s}"),
    ("password", lambda r: _pick(r, ALNUM, 12), lambda s: f'  "password": "{s}",'),
    ("secret", lambda r: _pick(r, ALNUM, 32), lambda s: f"api_key: '{s}'"),
    ("secret", lambda r: _pick(r, HEX, 40), lambda s: f"client_secret={s}"),
    (
        "gcp-private-key",
        _pem,
        lambda s: (
            '{"type": "service_account", "project_id": "acme-prod", "private_key": '
            + json.dumps(s.replace("-----BEGIN ", "-----BEGIN ", 1))
            + ', "client_email": "ci@acme-prod.iam.gserviceaccount.com"}'
        ),
    ),
]

_CONTEXTS = [
    "here's my key {s} can you set up the deploy?",
    "I pasted the token into the config: {s}",
    "$ curl -H 'Authorization: token {s}' https://api.example.com/v1/items",
    "export API_TOKEN={s}",
    '{{"name": "ci", "credential": "{s}", "region": "eu-west-1"}}',
    "Tool output:\n  loaded settings\n  value={s}\n  done in 0.3s",
    "The failing request used {s} and returned 401.",
    "- step 3: rotate {s} after the migration",
]


def secret_samples(count: int, seed: int = 17) -> list[Sample]:
    """``count`` texts each holding one secret, every type in turn."""
    rng = random.Random(seed)
    kinds = list(SECRETS)
    samples = []
    for i in range(count):
        slot = i % (len(kinds) + len(_PLACED))
        if slot < len(kinds):
            kind = kinds[slot]
            secret = SECRETS[kind](rng)
            context = rng.choice(_CONTEXTS)
            samples.append(Sample(kind, context.format(s=secret), secret))
        else:
            kind, make, place = _PLACED[slot - len(kinds)]
            secret = make(rng)
            text = place(secret)
            if kind == "gcp-private-key":
                secret = json.dumps(secret)[1:-1]  # as it stands in the JSON text
            samples.append(Sample(kind, rng.choice(["", "config:\n", "see "]) + text, secret))
    return samples


def _sha(rng: random.Random, name: str) -> str:
    return hashlib.new(name, rng.randbytes(32)).hexdigest()


_WORDS = ["user", "session", "token", "refresh", "handler", "factory", "provider"]

# look-alike name -> a text with it
LOOK_ALIKES: dict[str, Callable[[random.Random], str]] = {
    "git-sha": lambda r: f"Merged {_sha(r, 'sha1')} into main; see {_sha(r, 'sha1')[:7]}.",
    "uuid": lambda r: f"request {uuid.UUID(bytes=r.randbytes(16))} failed, retrying",
    "sha256": lambda r: f"sha256:{_sha(r, 'sha256')}  dist/app-1.4.2.tar.gz",
    "md5": lambda r: f"checksum md5={_sha(r, 'md5')}",
    "base64-image": lambda r: (
        "![chart](data:image/png;base64," + base64.b64encode(r.randbytes(300)).decode() + ")"
    ),
    "long-identifier": lambda r: (
        "def "
        + "_".join(
            r.choice(["build", "session", "registry", "from", "journal", "entry", "index"])
            for _ in range(8)
        )
        + "(self) -> None:"
    ),
    "camel-identifier": lambda r: (
        "const "
        + "".join(
            w.capitalize()
            for w in r.sample(
                ["user", "session", "token", "refresh", "handler", "factory", "provider"], 5
            )
        )
        + "Key = useMemo()"
    ),
    "code-password": lambda r: r.choice(
        [
            "user = authenticate(username=username, password=password)",
            "password: str = Field(..., min_length=12)",
            "api_key = os.environ['OPENAI_API_KEY']",
            'token = request.headers.get("Authorization")',
            "secret_key=settings.SECRET_KEY,",
            "PASSWORD=${DB_PASSWORD}",
        ]
    ),
    "prose": lambda r: r.choice(
        [
            "The password: stored in the vault, never in the repo.",
            "We rotate each API key every 90 days; the token: short-lived.",
            "Ask the user for their access key before continuing.",
            "Tasks: finish the report, skim the desk notes, ask Sky about the risk.",
        ]
    ),
    "url-no-password": lambda r: (
        f"git clone https://github.com/acme/app-{r.randint(1, 99)}.git"
        f" and open https://user@example.com:{r.randint(1000, 9999)}/path"
    ),
    "version-hash": lambda r: f"torch==2.3.1+cu121 --hash=sha256:{_sha(r, 'sha256')}",
    "aws-arn": lambda r: f"arn:aws:iam::{r.randint(10**11, 10**12)}:role/deploy-{r.randint(1, 9)}",
    "placeholder": lambda r: r.choice(
        [
            "OPENAI_API_KEY=<your-key-here>",
            "AWS_SECRET_ACCESS_KEY=********",
            "password = 'changeme'",
            "postgres://user:${PGPASSWORD}@localhost/db",
        ]
    ),
    "npm-lock": lambda r: (
        '"integrity": "sha512-' + base64.b64encode(r.randbytes(64)).decode() + '"'
    ),
}


def look_alike_samples(count: int, seed: int = 23) -> list[Sample]:
    """``count`` texts with no secret, every look-alike in turn."""
    rng = random.Random(seed)
    names = list(LOOK_ALIKES)
    return [
        Sample(names[i % len(names)], LOOK_ALIKES[names[i % len(names)]](rng)) for i in range(count)
    ]
