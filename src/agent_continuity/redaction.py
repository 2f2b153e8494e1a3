"""Secret redaction: detected secrets never reach a store.

Every event a live session appends passes through :meth:`Redactor.drafts`
before it is written (see :class:`~agent_continuity.live.LiveSession`), so
the command line, the Python API and every later front end get it once, in
one place. Each detected secret is replaced, in place, by a typed
placeholder such as ``[REDACTED:aws-access-key]``; only string values
change, so the event keeps its structure.

The detector is a fixed rule set compiled once at import. Each rule names
the literal fragments its matches must contain (``AKIA``, ``ghp_``,
``-----BEGIN``...); a rule's regular expression runs only when one of its
fragments occurs in the text, so ordinary prose costs a few substring
searches. What it finds: cloud keys (AWS, Google, Azure), Git host tokens
(GitHub, GitLab), chat tools (Slack, Discord), model providers (OpenAI,
Anthropic, Google, Hugging Face), Stripe, Twilio, SendGrid, npm and PyPI
tokens, JWTs, bearer tokens, PEM private keys, the password of a URL, and
``password=`` / ``api_key:`` style assignments. What it cannot find: a
secret with no recognisable shape or name (a bare password in prose).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_continuity.errors import ConfigError, InvalidInput

if TYPE_CHECKING:  # the SessionStart hook redacts without importing the model
    from agent_continuity.model import EventDraft

PLACEHOLDER = "[REDACTED:{}]"
# No secret the rules know is shorter (`pwd=abcd`); shorter text is not looked at.
_SHORTEST = 8
_DONE = "[REDACTED:"


@dataclass(frozen=True)
class Rule:
    """One kind of secret.

    Attributes:
        name: The placeholder's type (``aws-access-key``).
        pattern: The compiled expression.
        literals: Case-sensitive fragments; the rule runs when one occurs.
        words: Lower-case fragments looked for in the lower-cased text; the
            rule runs when one occurs.
        gate: A cheap expression searched in the lower-cased text; the rule
            runs when it matches (one that starts with literals, which ``re``
            skips to quickly, unlike a case-blind ``pattern``). A rule with
            no literals, words or gate always runs.
        group: The group holding the secret (0: the whole match); the rest
            of the match (a URL's user and host, ``password=``) is kept.
        check: Further test of the secret's text (False: not a secret).
    """

    name: str
    pattern: re.Pattern[str]
    literals: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    gate: re.Pattern[str] | None = None
    group: int = 0
    check: Callable[[str], bool] | None = None


def _has_digit_and_letter(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _mixed_case(text: str) -> bool:
    return any(c.isupper() for c in text) and any(c.islower() for c in text)


_NOT_VALUES = frozenset(
    "none null nil true false undefined required optional string str bytes int any "
    "secret password token redacted changeme example xxx yyy todo tbd".split()
)
_CODE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[a-z_]*_[a-z_]*|[a-z]+")


def _assigned_value(text: str) -> bool:
    """A value after ``password=``: not a reference to one (``$PW``, ``cfg.password``)."""
    if text.startswith(_DONE) or text[0] in "$%<{[(*#" or text.lower() in _NOT_VALUES:
        return False
    if set(text) <= set("*xX.-_"):
        return False
    # A bare name in code (`password=password`, `key=self.key`) is a variable;
    # a quoted value is checked by the quoted rule instead.
    return _CODE_NAME.fullmatch(text) is None or any(c.isdigit() for c in text)


def _quoted_value(text: str) -> bool:
    return not (
        text.startswith(_DONE)
        or text[0] in "$%<{"
        or text.lower() in _NOT_VALUES
        or set(text) <= set("*xX.-_ ")
    )


def _url_password(text: str) -> bool:
    return not (text.startswith(_DONE) or text[0] in "$%<{" or set(text) <= set("*x"))


# Names under which code and configuration hold secrets (`DB_PASSWORD=`, `"api_key":`).
_SECRET_NAME = (
    r"(?:pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|apikey|access[_-]?key|auth[_-]?key"
    r"|private[_-]?key|token|credentials?)"
)
# A name then `=` or `:` somewhere: what the assignment rules need to run at all.
_ASSIGNMENT = re.compile(r"(?:pass|pwd|secret|key|token|credential)[a-z_-]{0,8}[\"']?\s*[:=]")
_TOKEN = r"[A-Za-z0-9_-]"
_END = r"(?![A-Za-z0-9_-])"
_START = r"(?<![A-Za-z0-9_-])"
_PEM = (
    r"-----BEGIN[A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END[A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----|(?:\\n|[A-Za-z0-9+/=\s:-])*)"
)


def _r(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


# Order matters: a longer or more specific shape goes first (a PEM block
# before anything inside it, Anthropic's sk-ant- before OpenAI's sk-), and the
# generic assignments last, so a value already replaced is left alone.
BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("private-key", _r(_PEM), literals=("-----BEGIN",)),
    Rule(
        "url-password",
        _r(r"(?<=[A-Za-z0-9])://[^\s:/@?#\"'<>]{1,128}:([^\s@/?#\"'<>]{1,256})@"),
        literals=("://",),
        group=1,
        check=_url_password,
    ),
    Rule(
        "aws-access-key",
        _r(rf"{_START}(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{{16}}{_END}"),
        literals=("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    ),
    Rule(
        "aws-secret-key",
        _r(
            r"(?:aws[\w.-]{0,30}?(?:secret|sak)[\w.-]{0,30}[\"']?\s*(?:[:=]|=>)\s*[\"']?"
            r"|\[REDACTED:aws-access-key\][\s,:;|\"'/]{1,5})"
            r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
            re.I,
        ),
        words=("aws",),
        # After an access key id (`AKIA...,wJalr...`), which is replaced first.
        literals=("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        group=1,
    ),
    Rule(
        "gcp-private-key-id",
        _r(r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\""),
        literals=("private_key_id",),
        group=1,
    ),
    Rule("google-api-key", _r(r"AIza[0-9A-Za-z_-]{35}" + _END), literals=("AIza",)),
    Rule(
        "azure-storage-key",
        _r(
            r"(?:Account|SharedAccess|Access|Primary|Secondary)Key\s*=\s*([A-Za-z0-9+/]{40,}={0,2})"
        ),
        literals=("Key",),
        group=1,
    ),
    Rule(
        "azure-sas-token",
        _r(r"[?&;]sig=([A-Za-z0-9%+/]{30,}(?:%3D|=)*)"),
        literals=("sig=",),
        group=1,
    ),
    Rule(
        "github-token",
        _r(rf"{_START}(?:gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{50,255}}){_END}"),
        literals=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Rule(
        "gitlab-token",
        _r(rf"{_START}gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft)-{_TOKEN}{{20,}}"),
        literals=("gl",),
    ),
    Rule(
        "slack-webhook",
        _r(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}"),
        literals=("hooks.slack.com",),
    ),
    Rule(
        "slack-token",
        _r(rf"{_START}(?:xox[abposre]-[A-Za-z0-9-]{{10,}}|xapp-\d-[A-Za-z0-9-]{{20,}})"),
        literals=("xox", "xapp-"),
    ),
    Rule(
        "discord-webhook",
        _r(r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{30,}"),
        literals=("/api/webhooks/",),
    ),
    Rule(
        "discord-token",
        _r(
            rf"{_START}[MNO][A-Za-z0-9_-]{{23,27}}\.[A-Za-z0-9_-]{{6}}\.[A-Za-z0-9_-]{{27,40}}{_END}"
        ),
        gate=re.compile(r"\.[a-z0-9_-]{6}\."),
        check=_has_digit_and_letter,
    ),
    Rule("anthropic-api-key", _r(rf"{_START}sk-ant-{_TOKEN}{{20,}}"), literals=("sk-ant-",)),
    Rule(
        "openai-api-key",
        _r(rf"{_START}sk-(?:proj-|svcacct-|admin-|None-)?{_TOKEN}{{20,}}"),
        literals=("sk-",),
        check=_has_digit_and_letter,
    ),
    Rule(
        "huggingface-token",
        _r(rf"{_START}hf_[A-Za-z0-9]{{30,}}{_END}"),
        literals=("hf_",),
        check=_mixed_case,
    ),
    Rule(
        "stripe-key",
        _r(rf"{_START}(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{{20,}}|whsec_[A-Za-z0-9]{{24,}})"),
        literals=("_live_", "_test_", "whsec_"),
    ),
    Rule("twilio-api-key", _r(rf"{_START}SK[0-9a-f]{{32}}{_END}"), literals=("SK",)),
    Rule(
        "twilio-auth-token",
        _r(r"twilio[\w.\s-]{0,30}?token[\"']?\s*(?:[:=]|=>|is)?\s*[\"']?([0-9a-f]{32})\b", re.I),
        words=("twilio",),
        group=1,
    ),
    Rule(
        "sendgrid-api-key",
        _r(rf"{_START}SG\.{_TOKEN}{{22}}\.{_TOKEN}{{43}}{_END}"),
        literals=("SG.",),
    ),
    Rule("npm-token", _r(rf"{_START}npm_[A-Za-z0-9]{{36}}{_END}"), literals=("npm_",)),
    Rule("pypi-token", _r(rf"{_START}pypi-Ag{_TOKEN}{{50,}}"), literals=("pypi-Ag",)),
    Rule(
        "jwt",
        _r(rf"{_START}eyJ{_TOKEN}{{8,}}\.eyJ{_TOKEN}{{8,}}\.{_TOKEN}{{8,}}"),
        literals=("eyJ",),
    ),
    Rule(
        "bearer-token",
        _r(r"\bbearer\s+([A-Za-z0-9._~+/-]{20,}=*)", re.I),
        words=("bearer",),
        group=1,
        check=_has_digit_and_letter,
    ),
    Rule(
        "secret",
        _r(
            rf"{_SECRET_NAME}[\"']?\s*(?:=|:|=>|:=)\s*"
            r"(?:\"([^\"\n]{4,256})\"|'([^'\n]{4,256})')",
            re.I,
        ),
        gate=_ASSIGNMENT,
        group=-1,  # whichever quote group matched
        check=_quoted_value,
    ),
    Rule(
        "secret",
        _r(
            rf"{_SECRET_NAME}\s*(?:=|:=|=>)\s*"
            r"([^\s\"'`,;(){}\[\]<>]{4,256})(?![(\w])",
            re.I,
        ),
        gate=_ASSIGNMENT,
        group=1,
        check=_assigned_value,
    ),
    Rule(
        "secret",
        # `password: hunter2` (YAML, prose): only a value with a digit, so that
        # `password: str` and "the token: stored in the vault" are left alone.
        _r(
            rf"{_SECRET_NAME}:\s+"
            r"([^\s\"'`,;(){}\[\]<>]{4,256})(?![(\w])",
            re.I,
        ),
        gate=_ASSIGNMENT,
        group=1,
        check=lambda v: _assigned_value(v) and any(c.isdigit() for c in v),
    ),
)

# Keys of a mapping whose string value is a secret whatever it looks like
# (tool arguments such as {"password": "hunter2"}).
_SECRET_KEY = re.compile(rf"(?:[\w.-]*?[_.-]?)?{_SECRET_NAME}", re.I)
_PASSWORD_NAME = re.compile(r"pass|pwd", re.I)


@functools.lru_cache(maxsize=1024)
def _names_a_secret(key: str) -> bool:
    # Cached: payloads use a handful of keys ("role", "text", "arguments"...).
    return _SECRET_KEY.fullmatch(key) is not None


class Redactor:
    """Replaces detected secrets with typed placeholders.

    Args:
        extra: Further rules, type name to regular expression (the first
            group, if any, is the secret; else the whole match).
        allow: Regular expressions of secrets to keep (a fullmatch against the
            detected secret; a plain literal such as a known test key works).

    Raises:
        ConfigError: If a pattern is not a valid regular expression.
    """

    def __init__(self, extra: Mapping[str, str] | None = None, allow: Sequence[str] = ()) -> None:
        rules = list(BUILTIN_RULES)
        for name, pattern in (extra or {}).items():
            compiled = compile_pattern(pattern, f"redact_patterns.{name}")
            rules.insert(-3, Rule(name, compiled, group=1 if compiled.groups else 0))
        self._rules = tuple(rules)
        self._allow = tuple(compile_pattern(p, "redact_allow") for p in allow)
        # Each fragment once, with the rules it opens: ordinary text then costs
        # one substring search per distinct fragment, and no rule is looked at.
        by_literal: dict[str, set[int]] = {}
        for index, rule in enumerate(self._rules):
            for literal in rule.literals:
                by_literal.setdefault(literal, set()).add(index)
        self._literals = tuple((f, frozenset(i)) for f, i in by_literal.items())
        self._cased = tuple(
            (index, rule) for index, rule in enumerate(self._rules) if rule.words or rule.gate
        )
        self._always = frozenset(
            index
            for index, rule in enumerate(self._rules)
            if not (rule.literals or rule.words or rule.gate)
        )

    def text(self, text: str) -> str:
        """``text`` with each detected secret replaced by its placeholder.

        The rules to run are chosen once, from the text as given (a rule
        whose secrets can follow another's placeholder names that one's
        fragments too).
        """
        if len(text) < _SHORTEST:
            return text
        run = set(self._always)
        for literal, indexes in self._literals:
            if literal in text:
                run |= indexes
        lowered = text.lower()
        gates: dict[re.Pattern[str], bool] = {}
        for index, rule in self._cased:
            if index in run:
                continue
            if any(map(lowered.__contains__, rule.words)):
                run.add(index)
            elif rule.gate is not None:
                opened = gates.get(rule.gate)
                if opened is None:
                    opened = gates[rule.gate] = rule.gate.search(lowered) is not None
                if opened:
                    run.add(index)
        for index in sorted(run):
            rule = self._rules[index]
            if rule.pattern.search(text) is not None:
                text = rule.pattern.sub(functools.partial(self._replace, rule=rule), text)
        return text

    def _replace(self, match: re.Match[str], rule: Rule) -> str:
        group = rule.group
        if group < 0:  # the first group that matched
            group = next(i for i in range(1, len(match.groups()) + 1) if match[i] is not None)
        secret = match[group]
        if rule.check is not None and not rule.check(secret):
            return match[0]
        if any(allowed.fullmatch(secret) for allowed in self._allow):
            return match[0]
        start, end = match.start(group) - match.start(), match.end(group) - match.start()
        whole = match[0]
        name = rule.name
        if name == "secret" and _PASSWORD_NAME.search(whole, 0, start):
            name = "password"
        return whole[:start] + PLACEHOLDER.format(name) + whole[end:]

    def value(self, value: Any) -> Any:
        """``value`` (text, or lists and mappings of them) with its secrets replaced.

        What holds no secret is returned as it is (the same object), so the
        common case copies nothing.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            items = {key: self._item(key, item) for key, item in value.items()}
            same = all(items[key] is item for key, item in value.items())
            return value if same else items
        if isinstance(value, list | tuple):
            redacted = [self.value(item) for item in value]
            same = all(new is old for new, old in zip(redacted, value, strict=True))
            return value if same else redacted
        return value

    def _item(self, key: object, item: Any) -> Any:
        if (
            isinstance(item, str)
            and item
            and isinstance(key, str)
            and _names_a_secret(key)
            and _quoted_value(item)
            and not any(allowed.fullmatch(item) for allowed in self._allow)
        ):
            return PLACEHOLDER.format("password" if _PASSWORD_NAME.search(key) else "secret")
        return self.value(item)

    def drafts(self, drafts: Iterable[EventDraft]) -> list[EventDraft]:
        """The drafts with their payloads redacted (a draft without secrets is kept as it is).

        Raises:
            InvalidInput: If a payload contains itself or nests a few hundred
                levels deep: it could not be checked, so it is not written.
        """
        out = []
        for draft in drafts:
            try:
                payload = self.value(draft.payload)
            except RecursionError:
                # What the encoder would refuse as well; never written unchecked.
                raise InvalidInput(
                    "value cannot be stored as JSON: it contains itself, or nests too deeply"
                ) from None
            if payload is not draft.payload:
                draft = draft.model_copy(update={"payload": payload})
            out.append(draft)
        return out


def compile_pattern(pattern: object, name: str) -> re.Pattern[str]:
    """``pattern`` compiled, or a ConfigError naming the setting.

    Raises:
        ConfigError: If it is not text or not a valid regular expression.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{name} must be a regular expression (text), not {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"{name}: {pattern!r} is not a valid regular expression ({exc}); fix or remove it"
        ) from None
