"""The specification's recovery protocols and its five restoration steps.

The protocols (quick, full, emergency) say *which work* a recovery does; the
five restoration steps say *what it produced*. Every recovery reports both:
the protocol's own steps in ``protocol`` and the five steps, always all five
and in order, in ``steps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .result import Mode, ProtocolReport, ProtocolStep, RestorationStep


@dataclass(frozen=True, slots=True)
class ProtocolDefinition:
    """A recovery protocol as the specification's recoveryProtocols block defines it."""

    name: str
    description: str
    time_limit: str
    steps: tuple[str, ...]


PROTOCOLS: Mapping[Mode, ProtocolDefinition] = {
    "quick": ProtocolDefinition(
        name="quickRecovery",
        description="Fast context restoration for same-day sessions",
        time_limit="24 hours",
        steps=(
            "load-session-snapshot",
            "restore-conversation-context",
            "verify-project-state",
            "resume-current-task",
        ),
    ),
    "full": ProtocolDefinition(
        name="fullRecovery",
        description="Complete context reconstruction for older sessions",
        time_limit="unlimited",
        steps=(
            "analyze-project-changes",
            "rebuild-context-from-logs",
            "update-knowledge-base",
            "synchronize-with-current-state",
            "generate-recovery-summary",
        ),
    ),
    "emergency": ProtocolDefinition(
        name="emergencyRecovery",
        description="Minimal context for critical situations",
        time_limit="unlimited",
        steps=(
            "load-critical-project-info",
            "identify-urgent-tasks",
            "establish-basic-context",
        ),
    ),
}

# (step name, named output), in the order of the specification's restorationProcess.
RESTORATION_STEPS: tuple[tuple[str, str], ...] = (
    ("session-identification", "session-metadata"),
    ("context-loading", "context-snapshot"),
    ("state-synchronisation", "state-diff"),
    ("knowledge-update", "updated-knowledge-base"),
    ("continuation-plan", "continuation-plan"),
)


def restoration_steps(details: Sequence[str]) -> list[RestorationStep]:
    """The five restoration steps with what each found.

    Args:
        details: Exactly five details, in step order.

    Raises:
        ValueError: If there are not exactly five details (a bug in the caller).
    """
    if len(details) != len(RESTORATION_STEPS):
        raise ValueError(f"expected {len(RESTORATION_STEPS)} step details, got {len(details)}")
    return [
        RestorationStep(name=name, output=output, detail=detail)
        for (name, output), detail in zip(RESTORATION_STEPS, details, strict=True)
    ]


def protocol_report(mode: Mode, details: Mapping[str, str]) -> ProtocolReport:
    """The protocol that ran, each of its steps with what it did.

    Args:
        mode: Which protocol.
        details: What each step did, by step name; a step without one is
            reported as ``"done"``.
    """
    definition = PROTOCOLS[mode]
    return ProtocolReport(
        name=definition.name,
        description=definition.description,
        steps=[ProtocolStep(name=s, detail=details.get(s, "done")) for s in definition.steps],
    )
