"""Clipping message text for the session's state: same result however long the text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent_continuity import SessionManager
from agent_continuity.replay import clip


def _reference(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_WORDS = st.text(alphabet=st.characters(blacklist_categories=["Zs", "Cc"]), min_size=1, max_size=40)
_SPACES = st.text(alphabet=" \t\n\r\u2028\u3000", min_size=1, max_size=300)
_TEXTS = st.lists(st.tuples(_SPACES, _WORDS), max_size=400).map(
    lambda parts: "".join(space + word for space, word in parts)
)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, limit=st.sampled_from([1, 2, 10, 160, 2000]))
# Exactly `limit` characters of words, then only white space: nothing to cut.
@example(text="a" * 160 + " " * 700, limit=160)
@example(text="word " * 32 + " " * 700, limit=160)
def test_clip_equals_collapsing_the_whole_text_first(text: str, limit: int) -> None:
    assert clip(text, limit) == _reference(text, limit)


def test_a_huge_message_is_kept_whole_and_shown_clipped(tmp_path: Path) -> None:
    mgr = SessionManager(store="memory:", project_dir=tmp_path, user_id="u", observer=False)
    session = mgr.start(type="test", auto_save=False)
    answer = "An answer   spread\n\nover lines. " * 40_000  # about 1.3 MB

    seq = session.add_message("assistant", answer)

    assert mgr.events(session.id)[-1].payload["text"] == answer  # the journal keeps it all
    shown = session.view.recent_messages[-1]["text"]
    assert len(shown) == 2000 and shown.endswith("…")
    assert shown.startswith("An answer spread over lines. An answer")
    assert session.view.last_action == "assistant: " + _reference(answer, 160)
    assert session.view.recent_messages[-1]["seq"] == seq
    session.end()
    mgr.close()
