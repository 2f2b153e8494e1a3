"""The recovery engine's tunables: confidence weights, thresholds, time limits, prompt budget.

Defaults are those of DESIGN.md §5. The caller builds a :class:`RecoverySettings`
from configuration (``[tool.continuity.recovery]``, ``continuity.toml``) with
:meth:`RecoverySettings.from_mapping`; the engine itself reads no file and no
environment variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from agent_continuity.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

_SETTINGS_CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    # A misspelt key in a config file must not silently fall back to a default.
    extra="forbid",
    frozen=True,
)


class ConfidenceWeights(BaseModel):
    """How much each factor counts in the recovery confidence score.

    The weights need not add up to one: the score divides by their sum, so it
    always stays in [0, 1].
    """

    model_config = _SETTINGS_CONFIG

    elapsed: float = Field(default=0.30, ge=0)
    completeness: float = Field(default=0.25, ge=0)
    task_status: float = Field(default=0.20, ge=0)
    coherence: float = Field(default=0.25, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> ConfidenceWeights:
        if self.total <= 0:
            raise ValueError("at least one confidence weight must be above zero")
        return self

    @property
    def total(self) -> float:
        """The sum of the four weights."""
        return self.elapsed + self.completeness + self.task_status + self.coherence


class RecoverySettings(BaseModel):
    """Every setting of the recovery engine.

    Attributes:
        weights: Weight of each confidence factor.
        half_life_hours: The elapsed-time factor halves every this many hours.
        auto_resume_threshold: At or above this score the session resumes by itself.
        prompt_threshold: At or above this score (and below the other) the user is asked.
        quick_limit_hours: Sessions younger than this get quick recovery, older ones full.
        prompt_budget_tokens: Upper bound of the recovery prompt, in approximate tokens.
        chars_per_token: How many characters count as one token when measuring the prompt.
        prompt_template: The user's recovery prompt template (its text), or None for the
            specification's template.
        max_changed_files_for_full_coherence: This many changed files cost no coherence;
            each file beyond them lowers it.
        changed_files_scale: Beyond the free allowance, ``n`` more changed files give a
            file factor of ``1 / (1 + n / changed_files_scale)`` (half at this many).
        prompt_item_chars: Longest single list item (decision, message...) in the prompt.
        recent_messages_in_prompt: How many recent messages build the conversation summary
            when the session has none of its own.
    """

    model_config = _SETTINGS_CONFIG

    weights: ConfidenceWeights = Field(default_factory=ConfidenceWeights)
    half_life_hours: float = Field(default=24.0, gt=0)
    auto_resume_threshold: float = Field(default=0.80, ge=0, le=1)
    prompt_threshold: float = Field(default=0.50, ge=0, le=1)
    quick_limit_hours: float = Field(default=24.0, gt=0)
    prompt_budget_tokens: int = Field(default=2000, ge=50)
    chars_per_token: float = Field(default=4.0, gt=0)
    prompt_template: str | None = None
    max_changed_files_for_full_coherence: int = Field(default=3, ge=0)
    changed_files_scale: float = Field(default=20.0, gt=0)
    prompt_item_chars: int = Field(default=240, ge=40)
    recent_messages_in_prompt: int = Field(default=8, ge=0)

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> RecoverySettings:
        if self.prompt_threshold > self.auto_resume_threshold:
            raise ValueError(
                f"prompt-threshold ({self.prompt_threshold}) must not exceed "
                f"auto-resume-threshold ({self.auto_resume_threshold})"
            )
        return self

    @property
    def prompt_budget_chars(self) -> int:
        """The prompt budget in characters."""
        return int(self.prompt_budget_tokens * self.chars_per_token)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], *, source: str = "recovery settings"
    ) -> RecoverySettings:
        """Build settings from a configuration table.

        Keys may be snake_case, kebab-case or camelCase (``auto-resume-threshold``,
        ``autoResumeThreshold``); ``weights`` is a nested table.

        Args:
            values: The table, e.g. ``Config.recovery``.
            source: Where the values came from, for error messages.

        Raises:
            ConfigError: If a key is unknown or a value out of range.
        """
        try:
            return cls.model_validate(_normalise_keys(values))
        except ValidationError as exc:
            problems = "; ".join(_problem(error, values) for error in exc.errors())
            raise ConfigError(f"{source}: {problems}") from None


def _snake(name: str) -> str:
    """``auto-resume-threshold`` and ``autoResumeThreshold`` -> ``auto_resume_threshold``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).replace("-", "_").lower()


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _problem(error: ErrorDetails, values: Mapping[str, Any]) -> str:
    """One validation error, naming the key as the configuration spells it."""
    written: list[str] = []
    table: Any = values
    for part in error["loc"]:
        name = str(part)
        if isinstance(table, Mapping):
            name = next((str(k) for k in table if _snake(str(k)) == _snake(name)), name)
            table = table.get(name)
        written.append(name)
    key = ".".join(written)
    if error["type"] == "extra_forbidden":
        model: type[BaseModel] = ConfidenceWeights if len(written) > 1 else RecoverySettings
        known = ", ".join(_kebab(k) for k in model.model_fields)
        return f"unknown key {key!r} (known: {known})"
    message = error["msg"].removeprefix("Value error, ")
    if not key:
        return message
    return f"{key} = {error['input']!r}: {message}"


def _normalise_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    normalised: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if isinstance(value, Mapping):
            value = _normalise_keys(value)
        normalised[name] = value
    return normalised
