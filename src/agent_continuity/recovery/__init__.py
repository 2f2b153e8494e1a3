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

__all__ = [
    "CompletenessPart",
    "Confidence",
    "ConfidenceFactors",
    "ConfidenceWeights",
    "CriticalInfo",
    "Decision",
    "EmergencyResult",
    "Factor",
    "Mode",
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
    "build_confidence",
    "coherence_factor",
    "completeness_factor",
    "decide",
    "diff_state",
    "elapsed_factor",
    "task_status_factor",
    "weighted_score",
]
