"""What the web app asks of the HTTP API beyond the routes' own suites, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service_support import Served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("webapp-api") / "project").start()
    try:
        yield server
    finally:
        server.stop()


def test_the_notes_can_be_emptied(served: Served) -> None:
    with served.client(served.add_user("curie")) as client:
        sid = client.post("/api/sessions", json={}).json()["id"]
        path = f"/api/sessions/{sid}"
        assert client.post(f"{path}/update", json={"summary": "radium, then polonium"}).is_success
        answer = client.post(f"{path}/update", json={"summary": ""})
        assert answer.status_code == 200, answer.text
        assert client.get(path).json()["session"]["context"]["conversationSummary"] == ""
        refused = client.post(f"{path}/update", json={"task": ""})
        assert refused.status_code == 400  # other texts must still say something
