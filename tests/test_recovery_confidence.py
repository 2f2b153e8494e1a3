"""Recovery confidence: each factor, the weighted score, the thresholds, the settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent_continuity.errors import ConfigError
from agent_continuity.model import Task, TaskStatus
from agent_continuity.recovery import (
    CompletenessPart,
    ConfidenceFactors,
    Factor,
    RecoverySettings,
    StateDiff,
    build_confidence,
    coherence_factor,
    completeness_factor,
    decide,
    elapsed_factor,
    task_status_factor,
    weighted_score,
)
from recovery_builders import SETTINGS, T0

# -- elapsed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "expected"), [(0, 1.0), (12, 0.5**0.5), (24, 0.5), (48, 0.25), (72, 0.125)]
)
def test_elapsed_halves_every_half_life(hours: float, expected: float) -> None:
    factor = elapsed_factor(T0, T0 + timedelta(hours=hours), 24)
    assert factor.value == pytest.approx(expected)
    assert "halves every 24 h" in factor.reason


def test_elapsed_follows_a_configured_half_life() -> None:
    assert elapsed_factor(T0, T0 + timedelta(hours=6), 6).value == pytest.approx(0.5)


def test_a_reference_in_the_future_counts_as_no_time_and_says_so() -> None:
    factor = elapsed_factor(T0, T0 - timedelta(hours=1), 24)
    assert factor.value == 1.0 and "clock skew" in factor.reason


# -- completeness -------------------------------------------------------------------


def test_completeness_is_the_fraction_of_valid_parts_and_names_the_missing_ones() -> None:
    parts = [
        CompletenessPart("checksums", True),
        CompletenessPart("journal", False, "torn"),
        CompletenessPart("current task", True),
        CompletenessPart("next steps", False, "none planned"),
        CompletenessPart("code context", True),
    ]
    factor = completeness_factor(parts)
    assert factor.value == pytest.approx(0.6)
    assert "journal (torn)" in factor.reason and "next steps (none planned)" in factor.reason
    assert completeness_factor([]).value == 0.0


# -- task status --------------------------------------------------------------------


def _tasks(*tasks: Task) -> dict[str, Task]:
    return {t.id: t for t in tasks}


@pytest.mark.parametrize("status", [TaskStatus.OPEN, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED])
def test_an_open_current_task_scores_one(status: TaskStatus) -> None:
    assert task_status_factor("T-1", _tasks(Task(id="T-1", status=status))).value == 1.0


@pytest.mark.parametrize("status", [TaskStatus.DONE, TaskStatus.CANCELLED])
def test_a_closed_current_task_scores_zero(status: TaskStatus) -> None:
    factor = task_status_factor("T-1", _tasks(Task(id="T-1", status=status)))
    assert factor.value == 0.0 and status.value in factor.reason


def test_an_unknown_current_task_scores_zero() -> None:
    factor = task_status_factor("T-9", _tasks(Task(id="T-1")))
    assert factor.value == 0.0 and "unknown" in factor.reason


def test_without_a_current_task() -> None:
    assert task_status_factor(None, {}).value == 1.0  # never set: neutral
    assert task_status_factor(None, _tasks(Task(id="T-1"))).value == 1.0
    closed = _tasks(Task(id="T-1", status=TaskStatus.DONE))
    assert task_status_factor(None, closed).value == 0.5


# -- coherence --------------------------------------------------------------------


def _diff(**fields: object) -> StateDiff:
    base: dict[str, object] = {
        "saved_branch": "main",
        "current_branch": "main",
        "saved_head_reachable": True,
    }
    base.update(fields)
    return StateDiff.model_validate(base)


def test_coherence_is_one_when_nothing_moved() -> None:
    factor = coherence_factor(_diff(), active_file_count=3, settings=SETTINGS)
    assert factor.value == 1.0
    assert "same branch main" in factor.reason and "3 of 3 active files" in factor.reason


def test_a_changed_branch_and_lost_head_lower_coherence() -> None:
    diff = _diff(branch_changed=True, current_branch="other", saved_head_reachable=False)
    factor = coherence_factor(diff, active_file_count=0, settings=SETTINGS)
    # branch 0, ancestry 0, files 1 -> mean of three checks
    assert factor.value == pytest.approx(1 / 3)
    assert "main -> other" in factor.reason and "no longer an ancestor" in factor.reason


def test_missing_active_files_lower_coherence_by_their_share() -> None:
    diff = _diff(missing_active_files=["a.py"])
    factor = coherence_factor(diff, active_file_count=4, settings=SETTINGS)
    assert factor.value == pytest.approx((1 + 1 + 0.75 + 1) / 4)


def test_changed_files_decay_beyond_the_free_allowance() -> None:
    few = _diff(modified_files=["a", "b", "c"])
    assert coherence_factor(few, 0, SETTINGS).value == 1.0
    many = _diff(modified_files=[f"f{i}" for i in range(23)])
    # 20 files beyond the allowance of 3 halve the file check: (1 + 1 + 0.5) / 3
    assert coherence_factor(many, 0, SETTINGS).value == pytest.approx(2.5 / 3)


def test_checks_that_cannot_apply_are_left_out() -> None:
    no_git = StateDiff()  # no saved branch, ancestry unknown, no active files
    factor = coherence_factor(no_git, 0, SETTINGS)
    assert factor.value == 1.0 and "branch" not in factor.reason


# -- score and decision ----------------------------------------------------------------


def test_score_is_the_weighted_sum_of_the_factors() -> None:
    factors = ConfidenceFactors(elapsed=1.0, completeness=0.5, task_status=0.0, coherence=1.0)
    assert weighted_score(factors, SETTINGS) == pytest.approx(0.30 + 0.125 + 0 + 0.25)


def test_weights_that_do_not_add_up_to_one_are_normalised() -> None:
    settings = RecoverySettings.from_mapping(
        {"weights": {"elapsed": 2, "completeness": 2, "task-status": 0, "coherence": 0}}
    )
    factors = ConfidenceFactors(elapsed=1.0, completeness=0.5, task_status=0.0, coherence=0.0)
    assert weighted_score(factors, settings) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("score", "decision"),
    [
        (1.0, "auto-resume"),
        (0.80, "auto-resume"),
        (0.7999, "prompt"),
        (0.50, "prompt"),
        (0.4999, "new-session"),
        (0.0, "new-session"),
    ],
)
def test_threshold_edges(score: float, decision: str) -> None:
    assert decide(score, SETTINGS) == decision


def test_a_ceiling_caps_the_decision_but_never_raises_it() -> None:
    assert decide(0.95, SETTINGS, ceiling="prompt") == "prompt"
    assert decide(0.2, SETTINGS, ceiling="prompt") == "new-session"


def test_configured_thresholds_are_used() -> None:
    settings = RecoverySettings(auto_resume_threshold=0.9, prompt_threshold=0.3)
    assert decide(0.85, settings) == "prompt"
    assert decide(0.3, settings) == "prompt"


def test_build_confidence_rounds_to_three_decimals_and_keeps_the_reasons() -> None:
    confidence = build_confidence(
        Factor(0.99951, "e"), Factor(0.8, "c"), Factor(1.0, "t"), Factor(0.66666, "h"), SETTINGS
    )
    assert confidence.factors.elapsed == 1.0 and confidence.factors.coherence == 0.667
    assert confidence.score == round(0.3 * 0.99951 + 0.2 + 0.2 + 0.25 * 0.66666, 3)
    assert confidence.reasons == ["e", "c", "t", "h"]
    assert confidence.to_wire()["weights"] == {
        "elapsed": 0.3,
        "completeness": 0.25,
        "taskStatus": 0.2,
        "coherence": 0.25,
    }


# -- settings ------------------------------------------------------------------------


def test_settings_accept_kebab_snake_and_camel_keys() -> None:
    settings = RecoverySettings.from_mapping(
        {
            "auto-resume-threshold": 0.9,
            "promptThreshold": 0.4,
            "half_life_hours": 12,
            "prompt-template": "Resume {SESSION-ID}",
        }
    )
    assert settings.auto_resume_threshold == 0.9
    assert settings.prompt_threshold == 0.4
    assert settings.half_life_hours == 12
    assert settings.prompt_template == "Resume {SESSION-ID}"


def test_settings_defaults_match_the_design() -> None:
    s = RecoverySettings()
    assert (
        s.weights.elapsed,
        s.weights.completeness,
        s.weights.task_status,
        s.weights.coherence,
    ) == (0.30, 0.25, 0.20, 0.25)
    assert (s.half_life_hours, s.auto_resume_threshold, s.prompt_threshold) == (24, 0.8, 0.5)
    assert (s.quick_limit_hours, s.prompt_budget_tokens, s.prompt_template) == (24, 2000, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"auto-resume-treshold": 0.9}, "unknown key 'auto-resume-treshold'"),
        ({"prompt-threshold": 0.9, "auto-resume-threshold": 0.8}, "must not exceed"),
        ({"half-life-hours": 0}, "half-life-hours = 0"),
        (
            {"weights": {"elapsed": 0, "completeness": 0, "task-status": 0, "coherence": 0}},
            "at least one confidence weight",
        ),
    ],
)
def test_bad_settings_raise_a_config_error_naming_the_problem(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        RecoverySettings.from_mapping(values, source="continuity.toml")
