"""The session recovery prompt: the spec template filled, user templates, the token budget."""

from __future__ import annotations

from agent_continuity.recovery import (
    DEFAULT_TEMPLATE,
    RecoverySettings,
    StateDiff,
    render_prompt,
)
from recovery_builders import SETTINGS, SID, Journal, sms_session


def test_the_default_prompt_fills_every_section_of_the_spec_template() -> None:
    j = sms_session()
    j.blocker("Twilio sandbox credentials missing")
    diff = StateDiff(
        modified_files=["src/sms.php"],
        new_commits=["abc1234 Add SMS table"],
        saved_branch="main",
        current_branch="main",
    )
    prompt = render_prompt(j.view(), SETTINGS, diff=diff, issues=["tool call x never returned"])
    assert f"You are resuming work from {SID}." in prompt  # not SESSION-SESSION-...
    assert "- **Task**: TASK-6-004 — SMS Integration Framework (in-progress)" in prompt
    assert "- **Progress**: 85%" in prompt
    assert "- **Last Action**: blocked: Twilio sandbox credentials missing" in prompt
    assert "- **Next Steps**:\n  1. test-sms-endpoints\n  2. integrate-with-settings" in prompt
    assert "- **Phase**: phase-6" in prompt
    assert "modified: src/sms.php" in prompt and "commit abc1234 Add SMS table" in prompt
    assert "BLOCKER: Twilio sandbox credentials missing" in prompt
    assert "tool call x never returned" in prompt
    assert "Using Twilio as primary SMS provider" in prompt
    assert "user: Let's wire the SMS settings into the admin page." in prompt
    for instruction in (
        "1. Acknowledge session recovery",
        "2. Confirm current context",
        "3. Identify any changes",
        "4. Propose next actions",
        "5. Ask for confirmation before proceeding",
    ):
        assert instruction in prompt
    assert prompt.rstrip().endswith("Continue from where we left off.")
    assert not any(line != line.rstrip() for line in prompt.splitlines())


def test_a_conversation_summary_wins_over_the_messages() -> None:
    j = sms_session()
    j.state(summary="Working on SMS integration framework implementation")
    prompt = render_prompt(j.view(), SETTINGS)
    assert "Working on SMS integration framework implementation" in prompt
    assert "user: Let's wire" not in prompt


def test_an_unobserved_and_an_unchanged_project_say_so() -> None:
    view = sms_session().view()
    assert "not checked" in render_prompt(view, SETTINGS)
    assert "none detected since the last save" in render_prompt(view, SETTINGS, diff=StateDiff())


def test_a_session_with_nothing_in_it_still_renders() -> None:
    prompt = render_prompt(Journal().view(), SETTINGS)
    assert "- **Task**: none set" in prompt and "- **Next Steps**: none" in prompt
    assert "no conversation recorded" in prompt


def test_five_thousand_decisions_fit_the_budget_keeping_the_newest_and_the_next_steps() -> None:
    j = sms_session()
    for n in range(5000):
        j.decision(f"decision number {n:04d}: use approach {n} for the SMS retry policy")
    for n in range(30):
        j.message("user", f"message {n} " + "words " * 40)
    j.blocker("Twilio account suspended")
    prompt = render_prompt(j.view(), SETTINGS)
    assert len(prompt) <= SETTINGS.prompt_budget_tokens * SETTINGS.chars_per_token
    assert "decision number 4999" in prompt
    assert "decision number 0000" not in prompt
    assert "earlier decisions omitted)" in prompt
    assert "1. test-sms-endpoints" in prompt and "2. integrate-with-settings" in prompt
    assert "BLOCKER: Twilio account suspended" in prompt
    assert "TASK-6-004" in prompt and "85%" in prompt
    assert "message 29" in prompt  # the newest message survives too
    assert "5. Ask for confirmation before proceeding" in prompt


def test_a_tiny_budget_is_never_exceeded() -> None:
    j = sms_session()
    for n in range(200):
        j.next_step(f"step {n}")
    settings = RecoverySettings(prompt_budget_tokens=50)
    prompt = render_prompt(j.view(), settings)
    assert len(prompt) <= 200


def test_next_steps_are_trimmed_last_and_from_the_far_end() -> None:
    j = Journal()
    for n in range(400):
        j.next_step(f"step {n:03d} of the long plan")
    settings = RecoverySettings(prompt_budget_tokens=500)
    prompt = render_prompt(j.view(), settings)
    assert len(prompt) <= 2000
    assert "1. step 000 of the long plan" in prompt
    assert "step 399" not in prompt and "more next steps omitted)" in prompt


def test_a_custom_template_uses_the_placeholders_and_leaves_the_rest_alone() -> None:
    template = (
        "Resume SESSION-{SESSION-ID} / {SESSION-ID}\n"
        "Task {CURRENT-TASK} at {PROGRESS-PERCENTAGE} in {CURRENT-PHASE}\n"
        "Did: {LAST-ACTION}\n"
        "Next:\n{NEXT-STEPS}\n"
        "Changes: {RECENT-CHANGES}\nIssues: {ACTIVE-ISSUES}\n"
        "Talk: {CONVERSATION-SUMMARY}\nDecisions: {KEY-DECISIONS}\n"
        'Keep {UNKNOWN-THING}, {lower}, {} and {"json": 1} as they are; {NEXT-STEPS} twice.\n'
    )
    settings = RecoverySettings(prompt_template=template)
    prompt = render_prompt(sms_session().view(), settings, continuation_id="C-1", mode="quick")
    assert prompt.startswith(f"Resume {SID} / {SID}\n")
    assert "Task TASK-6-004 — SMS Integration Framework (in-progress) at 85% in phase-6" in prompt
    assert "Next:\n  1. test-sms-endpoints\n  2. integrate-with-settings\n" in prompt
    assert '{UNKNOWN-THING}, {lower}, {} and {"json": 1}' in prompt
    assert "Decisions:\n  - Using Twilio" in prompt
    assert prompt.count("1. test-sms-endpoints") == 2


def test_a_custom_template_can_use_the_extra_placeholders() -> None:
    settings = RecoverySettings(prompt_template="{RECOVERY-MODE} {CONTINUATION-ID} {CURRENT-STEP}")
    prompt = render_prompt(sms_session().view(), settings, continuation_id="CONT", mode="full")
    assert prompt == "full CONT admin-interface-integration"


def test_a_custom_template_is_held_to_the_budget_too() -> None:
    j = sms_session()
    for n in range(3000):
        j.decision(f"decision {n:04d}")
    settings = RecoverySettings(
        prompt_template="{KEY-DECISIONS}\n{NEXT-STEPS}", prompt_budget_tokens=100
    )
    prompt = render_prompt(j.view(), settings)
    assert len(prompt) <= 400 and "decision 2999" in prompt and "test-sms-endpoints" in prompt


def test_the_default_template_is_the_specs() -> None:
    for heading in (
        "## Previous Context:",
        "## Project State:",
        "## Conversation Summary:",
        "## Instructions:",
    ):
        assert heading in DEFAULT_TEMPLATE
