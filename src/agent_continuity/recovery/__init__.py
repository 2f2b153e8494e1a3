"""The recovery engine: pure functions of saved state, observation and time.

Nothing here reads a disk, a clock, git or the environment; the caller loads
the :class:`SavedState`, observes the project, reads the clock and passes all
of it in. Entry points:

* :func:`choose_mode` — quick or full, decided before loading;
* :func:`recover` — RECOVER_SESSION, the ``recover --json`` result;
* :func:`resume_task` — RESUME_TASK;
* :func:`emergency_context` — emergency recovery from emergency backups alone;
* :func:`render_prompt` — the session recovery prompt for the next agent.
"""

from __future__ import annotations

from .confidence import (
    CompletenessPart,
    Factor,
    build_confidence,
    coherence_factor,
    completeness_factor,
    decide,
    elapsed_factor,
    task_status_factor,
    weighted_score,
)
from .emergency import emergency_context
from .engine import choose_mode, recover, reference_time
from .integrity import (
    INTERRUPTED_TOOL_OUTPUT,
    Integrity,
    assess_integrity,
    repair_events,
)
from .prompt import DEFAULT_TEMPLATE, PLACEHOLDERS, render_prompt
from .protocols import PROTOCOLS, RESTORATION_STEPS, ProtocolDefinition
from .result import (
    Confidence,
    ConfidenceFactors,
    CriticalInfo,
    Decision,
    EmergencyResult,
    Mode,
    ProtocolReport,
    ProtocolStep,
    RecoveryResult,
    RestorationStep,
    ResumeTaskResult,
    StateDiff,
    Status,
    TaskChange,
    TaskContext,
    UrgentTask,
    ValidationCheck,
)
from .saved_state import SavedState
from .settings import ConfidenceWeights, RecoverySettings
from .state_diff import diff_state
from .summary import context_summary
from .tasks import resume_task
from .validation import validate_context

__all__ = [
    "DEFAULT_TEMPLATE",
    "INTERRUPTED_TOOL_OUTPUT",
    "PLACEHOLDERS",
    "PROTOCOLS",
    "RESTORATION_STEPS",
    "CompletenessPart",
    "Confidence",
    "ConfidenceFactors",
    "ConfidenceWeights",
    "CriticalInfo",
    "Decision",
    "EmergencyResult",
    "Factor",
    "Integrity",
    "Mode",
    "ProtocolDefinition",
    "ProtocolReport",
    "ProtocolStep",
    "RecoveryResult",
    "RecoverySettings",
    "RestorationStep",
    "ResumeTaskResult",
    "SavedState",
    "StateDiff",
    "Status",
    "TaskChange",
    "TaskContext",
    "UrgentTask",
    "ValidationCheck",
    "assess_integrity",
    "build_confidence",
    "choose_mode",
    "coherence_factor",
    "completeness_factor",
    "context_summary",
    "decide",
    "diff_state",
    "elapsed_factor",
    "emergency_context",
    "recover",
    "reference_time",
    "render_prompt",
    "repair_events",
    "resume_task",
    "task_status_factor",
    "validate_context",
    "weighted_score",
]
