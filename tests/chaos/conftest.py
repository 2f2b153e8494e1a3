"""The durability suites report their figures at the end of the run."""

from __future__ import annotations

import pytest
from chaos_support import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the chaos suites did: kills survived, events checked, damage found."""
    if not FIGURES:
        return
    terminalreporter.section("durability figures")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{count:>9,}  {name}")
