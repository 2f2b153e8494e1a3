"""ContinuitySaver passes LangGraph's own checkpointer conformance suite.

The suite is the PyPI package ``langgraph-checkpoint-conformance`` (pinned in
the ``dev`` extra); it runs every base capability and each optional one the
saver implements. Both durable stores are checked, each with a fresh store per
capability suite, as the suite asks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from agent_continuity.integrations.langgraph import ContinuitySaver


@pytest.mark.parametrize("scheme", ["files", "sqlite"])
def test_the_saver_passes_langgraph_s_conformance_suite_on_every_capability(
    scheme: str, tmp_path: Path
) -> None:
    counter = itertools.count()

    @checkpointer_test(name=f"ContinuitySaver ({scheme})")
    async def saver() -> AsyncIterator[ContinuitySaver]:
        folder = tmp_path / f"store-{next(counter)}"
        folder.mkdir()
        url = f"files:{folder}" if scheme == "files" else f"sqlite:///{folder}/store.db"
        with ContinuitySaver.from_conn_string(url, project_dir=str(tmp_path)) as made:
            yield made

    report = asyncio.run(validate(saver))
    summary = json.dumps(report.to_dict(), indent=1)
    # Every capability, the optional ones included, is implemented and passed.
    assert {name for name, r in report.results.items() if r.detected} == {
        c.value for c in ALL_CAPABILITIES
    }, summary
    assert report.passed_all_base(), summary
    assert report.passed_all(), summary
    assert report.conformance_level() == "FULL", summary
    assert all(r.tests_passed > 0 for r in report.results.values()), summary
