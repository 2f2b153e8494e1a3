"""Bad input, generated: every value is stored and read back exactly, or refused cleanly.

Hypothesis feeds ids, event payloads (any Unicode, U+2028, NUL, deep nesting,
huge strings), configuration values and command-line arguments to every
durable store and to the ``continuity`` command. Each either round-trips
exactly or is refused with a clear error (``ContinuityError``; exit 1 and
one line on stderr) and leaves the journal as it was: never a traceback,
never a partial write. Path-like ids never reach the file system.

``CONTINUITY_PROPERTY_EXAMPLES`` raises the number of examples.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_continuity import SessionManager
from agent_continuity.cli.errors import run
from agent_continuity.cli.main import cli
from agent_continuity.config import Config
from agent_continuity.errors import (
    ConfigError,
    InvalidIdentifier,
    InvalidInput,
    RecoveryPointNotFound,
    SessionNotFound,
)
from agent_continuity.live import LiveSession
from agent_continuity.replay import SessionView

EXAMPLES = int(os.environ.get("CONTINUITY_PROPERTY_EXAMPLES") or 30)
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STORES = ["files", "sqlite"]

# Text as agents produce it, with the characters that break naive line formats.
AWKWARD = ["\u2028", "\u2029", "\x00", "\n", "\r", "\ufeff", '"', "\\", "😀", "é", "\x1b"]
text = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(AWKWARD)), max_size=200
)
any_text = st.text(max_size=60)  # lone surrogates included
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=25,
)
PATH_LIKE = [
    "../../etc/passwd",
    "/etc/passwd",
    "SESSION-241124-001/../../../x",
    "SESSION-241124-001\x00",
    "SESSION-241124-001\n",
    "SESSION-241124-001/",
    "..",
    ".",
    "~",
    "SESSION-241124-0001",
    "SESSION-999999-001",
    "session-241124-001",
    "SESSION-\uff12\uff14\uff11\uff11\uff12\uff14-001",  # full-width digits
    "C:\\Windows\\system32",
]


def _url(kind: str, folder: Path) -> str:
    return f"files:{folder / 'tracking'}" if kind == "files" else f"sqlite:///{folder / 's.db'}"


@contextlib.contextmanager
def live_session(kind: str) -> Iterator[tuple[SessionManager, LiveSession, Path]]:
    """A fresh store in a folder of its own, and a session to write to."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        config = Config(user="prop", context_interval=3600, heartbeat_interval=3600)
        mgr = SessionManager(
            store=_url(kind, base), project_dir=base, config=config, observer=False
        )
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        try:
            yield mgr, session, base
        finally:
            mgr.close()


@pytest.fixture(scope="module", params=STORES)
def shared(request: pytest.FixtureRequest) -> Iterator[tuple[SessionManager, LiveSession]]:
    """One store and session per kind, reused by every example (cheap)."""
    with live_session(request.param) as (mgr, session, _):
        yield mgr, session


def last_seq(mgr: SessionManager, session: LiveSession) -> int:
    return mgr.store.read_events(session.id).last_seq


# -- event payloads -------------------------------------------------------------


@PROPERTY
@given(value=any_text)
def test_any_message_text_round_trips_or_is_refused_whole(
    shared: tuple[SessionManager, LiveSession], value: str
) -> None:
    mgr, session = shared
    before = last_seq(mgr, session)
    try:
        seq = session.add_message("user", value)
    except InvalidInput as exc:
        assert "surrogate" in str(exc) or not value.strip(), exc
        assert last_seq(mgr, session) == before, "a refused message was partly written"
        return
    assert mgr.events(session.id)[-1].seq == seq
    assert mgr.events(session.id)[-1].payload["text"] == value


@PROPERTY
@given(arguments=json_values, output=json_values)
def test_any_json_payload_round_trips_exactly(
    shared: tuple[SessionManager, LiveSession], arguments: Any, output: Any
) -> None:
    mgr, session = shared
    call = session.record_tool_call("tool", arguments=arguments)
    session.record_tool_result(call, output)
    call_event, result_event = mgr.events(session.id)[-2:]
    assert call_event.payload["arguments"] == arguments
    assert result_event.payload["output"] == output


@PROPERTY
@given(
    payload=st.one_of(
        st.dictionaries(st.integers() | st.booleans() | st.none(), text, min_size=1, max_size=3),
        st.builds(lambda k: {k: 1, str(k): 2}, st.integers()),
        st.builds(lambda depth: _nested(depth), st.integers(2_000, 20_000)),
        st.just({"x": float("nan")}),
        st.just({"x": float("inf")}),
        st.just({"x": object()}),
        st.just({"x": b"bytes"}),
        st.just({"x": {1, 2}}),
    )
)
def test_payloads_json_cannot_hold_exactly_are_refused_whole(
    shared: tuple[SessionManager, LiveSession], payload: Any
) -> None:
    """Non-text keys (1 would come back as "1", and {1: a, "1": b} would lose a),
    NaN, infinities, objects, bytes, sets and runaway nesting: refused, nothing written."""
    mgr, session = shared
    before = last_seq(mgr, session)
    with pytest.raises(InvalidInput):
        session.record_tool_call("tool", arguments=payload)
    assert last_seq(mgr, session) == before
    assert mgr.store.read_events(session.id).damage == []


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("kind", STORES)
def test_ten_megabytes_of_awkward_text_round_trip(kind: str) -> None:
    big = ("x" * 1000 + "\u2028\x00é😀") * 10_000
    with live_session(kind) as (mgr, session, _):
        seq = session.add_message("assistant", big)
        session.record_tool_call("tool", arguments={"blob": big, "deep": _nested(100)})
        assert mgr.events(session.id)[seq - 1].payload["text"] == big
        assert mgr.events(session.id)[-1].payload["arguments"]["deep"] == _nested(100)
        assert mgr.verify()["ok"]


# -- recovery points --------------------------------------------------------------

# One step of an agent's session: what it records, and when it saves.
steps = st.one_of(
    st.tuples(st.just("message"), st.sampled_from(["user", "assistant"]), text),
    st.tuples(st.just("tool"), st.booleans(), text),  # with or without its result
    st.tuples(st.just("decide"), st.just(""), text),
    st.tuples(st.just("step"), st.just(""), st.sampled_from(["build", "test", "ship"])),
    st.tuples(st.just("noise"), st.integers(1, 130), st.just("")),  # many non-message events
    st.tuples(
        st.just("save"), st.sampled_from(["auto", "user-request", "task-completion"]), st.just("")
    ),
)


def _run(session: LiveSession, kind: str, a: Any, b: Any) -> None:
    if kind == "message":
        session.add_message(a, b)
    elif kind == "tool":
        call = session.record_tool_call("grep", arguments={"q": b})
        if a:
            session.record_tool_result(call, b)
    elif kind == "decide":
        session.decide(b or "-", major=False)
    elif kind == "step":
        session.complete_step(b)
    elif kind == "noise":
        for number in range(a):
            session.note(f"n{number}")
    else:
        session.checkpoint(trigger=a, observe=False)


def _state(view: SessionView) -> dict[str, Any]:
    """What recovery hands on (the point's save time aside, which no event records)."""
    return {
        "record": view.record.model_dump(exclude={"persistence"}),
        "recent": list(view.recent_messages),
        "messages": view.message_count,
        "last_action": view.last_action,
        "tasks": {k: t.model_dump() for k, t in view.tasks.items()},
        "pending": {k: c.model_dump() for k, c in view.pending_calls.items()},
        "partial": view.partial_message_seq,
    }


@PROPERTY
@given(script=st.lists(steps, min_size=1, max_size=30))
def test_recovery_from_any_point_equals_a_full_replay(
    shared: tuple[SessionManager, LiveSession], script: list[tuple[str, Any, Any]]
) -> None:
    """Points refer to the journal for their recent messages (format 2): from every
    point kept, reading the journal from ``replay_from`` gives the full replay's state."""
    mgr, session = shared
    for kind, a, b in script:
        try:
            _run(session, kind, a, b)
        except InvalidInput:
            continue  # text the journal refuses (a lone surrogate, blank text)
    session.checkpoint(trigger="user-request", observe=False)
    events = mgr.events(session.id)
    for info in mgr.store.list_points(session.id):
        point = mgr.store.load_point(info.id)
        upto = [e for e in events if e.seq <= point.seq]
        read = mgr.store.read_events(session.id, after_seq=point.replay_from)
        from_point = SessionView.replay([e for e in read.events if e.seq <= point.seq], start=point)
        assert point.version == 2
        assert _state(from_point) == _state(SessionView.replay(upto)), info.id
    loaded = mgr.load(session.id).view
    assert _state(loaded) == _state(SessionView.replay(events))


# -- ids --------------------------------------------------------------------------


@PROPERTY
@given(value=st.one_of(st.sampled_from(PATH_LIKE), any_text))
def test_no_id_escapes_the_store_or_crashes_a_command(
    shared: tuple[SessionManager, LiveSession], value: str
) -> None:
    mgr, _ = shared
    refusals = (InvalidIdentifier, SessionNotFound, RecoveryPointNotFound)
    for lookup in (mgr.get, mgr.events, mgr.store.read_lease, mgr.store.load_point):
        try:
            found = lookup(value)
        except refusals:
            continue
        assert found is None, f"{value!r} found {found!r}"


@pytest.mark.parametrize("kind", STORES)
def test_path_like_ids_never_touch_the_file_system(kind: str) -> None:
    with live_session(kind) as (mgr, _, base):
        before = set(base.rglob("*"))
        for value in PATH_LIKE:
            for args in (
                ["show", value],
                ["recover", value, "--json"],
                ["message", "--session", value, "--role", "user", "hi"],
                ["update", "--session", value, "--decision", "x"],
                ["save", "--session", value],
                ["end", "--session", value],
            ):
                code, _, err = cli_run(["--store", mgr.store.url, *args], base)
                assert code == 1, (args, err)
                assert_clean_refusal(code, err)
        assert set(base.rglob("*")) == before


# -- configuration ------------------------------------------------------------------

SETTINGS = [
    "durability",
    "context-interval",
    "heartbeat-interval",
    "cli-lease-ttl",
    "backup-count",
    "triggers",
    "user",
    "build-timeout",
    "prompt-template",
    "recovery",
    "no-such-setting",
]
config_values = st.one_of(
    any_text,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(any_text, max_size=3),
    st.dictionaries(any_text, st.integers(), max_size=2),
    st.sampled_from(["30s", "5min", "2h", "-1s", "0", "1e309", "nan", "sync", "batched", ""]),
)


@PROPERTY
@given(key=st.sampled_from(SETTINGS), value=config_values)
def test_any_setting_value_is_taken_or_refused_with_a_config_error(key: str, value: Any) -> None:
    try:
        config = Config().with_values({key: value}, "test")
    except ConfigError as exc:
        assert str(exc).startswith("test: "), exc
        return
    assert isinstance(config, Config)


@PROPERTY
@given(
    variable=st.sampled_from(
        ["CONTINUITY_BACKUP_COUNT", "CONTINUITY_DURABILITY", "CONTINUITY_CONTEXT_INTERVAL"]
    ),
    value=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
)
def test_a_bad_environment_value_is_one_clear_line(variable: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        saved = os.environ.get(variable)
        os.environ[variable] = value
        try:
            code, _, err = cli_run(["--store", f"files:{folder}/t", "list", "--json"], Path(folder))
        finally:
            if saved is None:
                del os.environ[variable]
            else:
                os.environ[variable] = saved
        if value.strip():
            assert code == 0 or (code == 1 and variable in err), err
        assert_clean_refusal(code, err)


# -- command-line arguments ---------------------------------------------------------


def cli_run(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """The ``continuity`` command's code, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(cli, args)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def assert_clean_refusal(code: int, err: str) -> None:
    """Exit 0, or exit 1 with one line on stderr; never a traceback or an internal error."""
    assert code in (0, 1), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 1:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and re.match(r"continuity: error \[[a-z-]+\]: ", lines[0]), err


@contextlib.contextmanager
def _cli_session(kind: str) -> Iterator[tuple[str, Path, str]]:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        url = _url(kind, base)
        code, out, err = cli_run(["--store", url, "start", "--task", "TASK-1", "--json"], base)
        assert code == 0, err
        yield url, base, out.split('"sessionId": "')[1].split('"')[0]


@pytest.fixture(scope="module", params=STORES)
def cli_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, str]]:
    """A store with an active command-line session, for the message property."""
    with _cli_session(request.param) as found:
        yield found


@pytest.fixture(scope="module", params=STORES)
def cli_scratch(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, str]]:
    """Another one, that any command may change (interrupt, recover, start...)."""
    with _cli_session(request.param) as found:
        yield found


@PROPERTY
@given(value=any_text)
def test_any_message_argument_round_trips_or_is_one_clear_line(
    cli_store: tuple[str, Path, str], value: str
) -> None:
    url, base, session_id = cli_store
    args = ["--store", url, "message", "--session", session_id, "--role", "user", "--", value]
    code, _, err = cli_run(args, base)
    assert_clean_refusal(code, err)
    mgr = SessionManager(store=url, project_dir=base, config=Config(user="prop"), observer=False)
    with mgr:
        last = mgr.events(session_id)[-1]
        if code == 0:
            assert last.payload["text"] == value
        else:
            assert last.payload.get("text") != value or value == "-"


@PROPERTY
@given(
    option=st.sampled_from(
        [
            ["update", "--progress"],
            ["update", "--decision"],
            ["update", "--next"],
            ["update", "--task"],
            ["update", "--file"],
            ["update", "--summary"],
            ["save", "--trigger"],
            ["recover", "--mode"],
            ["list", "--status"],
            ["start", "--type"],
            ["start", "--recover"],
            ["resume"],
            ["summary"],
            ["show"],
            ["message", "--role"],
            ["interrupt", "--cause"],
        ]
    ),
    value=st.one_of(any_text, st.sampled_from(["-1", "101", "50", "", "-", "--json", "auto"])),
)
def test_any_option_value_runs_or_is_one_clear_line(
    cli_scratch: tuple[str, Path, str], option: list[str], value: str
) -> None:
    url, base, session_id = cli_scratch
    before = cli_run(["--store", url, "show", session_id, "--json"], base)[1]
    code, _, err = cli_run(["--store", url, *option, value], base)
    assert_clean_refusal(code, err)
    if code == 1:
        after = cli_run(["--store", url, "show", session_id, "--json"], base)[1]
        if option[0] in ("update", "save", "message"):
            assert after == before, "a refused command changed the session"
