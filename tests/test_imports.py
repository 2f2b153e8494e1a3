"""The house rules on imports: every module imports on its own, the command
line uses only the public API, and the recovery engine is pure.

Each import is tried in a fresh interpreter, where nothing else was imported
first: an import cycle that only bites when a module is imported before
another shows up there and nowhere else.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import agent_continuity

PACKAGE_DIR = Path(agent_continuity.__file__).parent
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="agent_continuity.")
    # Running the package's __main__ runs the command line; importing it would too.
    if not info.name.endswith(".__main__")
)


def fresh(code: str) -> str:
    """Run ``code`` in a new interpreter, which must succeed; what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_walk_finds_the_modules_that_matter() -> None:
    assert {
        "agent_continuity.cli.session_commands",
        "agent_continuity.cli.recovery_commands",
        "agent_continuity.cli.options",
        "agent_continuity.recovery.engine",
        "agent_continuity.storage.tombstones",
    } <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    fresh(f"import {module}")


# What the command line may import: the package's public names (its __all__),
# the errors, and its own modules.
PUBLIC_MODULES = {"agent_continuity", "agent_continuity.errors"}


def _imports(path: Path, here: str = "agent_continuity.cli") -> list[tuple[str, list[str]]]:
    """Every import in ``path`` (TYPE_CHECKING and function-level ones too).

    Args:
        path: The module's file.
        here: The package the module is in, against which relative imports resolve.

    Returns:
        (absolute module, names) for each import.
    """
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names]))
    return found


# The front ends: the command line, the MCP server, the coding agents' hooks,
# the HTTP service and the framework integrations. Each may import its own
# package and start another front end; the rest of the library only through
# the public API.
FRONT_END_PACKAGES = ("cli", "mcp", "hooks", "service", "integrations")
FRONT_ENDS = tuple(f"agent_continuity.{name}" for name in FRONT_END_PACKAGES)
CLI_FILES = sorted(p for name in FRONT_END_PACKAGES for p in (PACKAGE_DIR / name).rglob("*.py"))


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_command_line_imports_only_the_public_api(path: Path) -> None:
    wrong = []
    for module, names in _imports(path):
        if module != "agent_continuity" and not module.startswith("agent_continuity."):
            continue  # the standard library, click, and the mcp SDK
        if any(module == end or module.startswith(end + ".") for end in FRONT_ENDS):
            continue
        if module not in PUBLIC_MODULES:
            wrong.append(f"{module} ({', '.join(names)})")
        elif module == "agent_continuity":
            wrong += [f"agent_continuity.{n}" for n in names if n not in agent_continuity.__all__]
    assert wrong == [], f"{path.name} reaches past the public API: {wrong}"


def test_every_public_name_resolves() -> None:
    fresh(
        "import agent_continuity\n"
        "for name in agent_continuity.__all__:\n"
        "    getattr(agent_continuity, name)\n"
    )


# The engine decides from what it is given; it opens nothing.
NOT_IN_THE_ENGINE = (
    "agent_continuity.storage",
    "agent_continuity.capture",
    "agent_continuity.session",
    "agent_continuity.live",
    "agent_continuity.restore",
    "agent_continuity.autosave",
    "agent_continuity.runner",
    "agent_continuity.config",
    "agent_continuity.listing",
    "agent_continuity.materialise",
    "agent_continuity.inspection",
    "sqlite3",
    "subprocess",
    "gzip",
    "watchdog",
)


def test_the_recovery_engine_loads_the_core_only() -> None:
    loaded = json.loads(
        fresh(
            "import json, sys\n"
            "import agent_continuity.recovery\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
    )
    impure = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in NOT_IN_THE_ENGINE)]
    assert impure == []
    # It did load the engine and what it stands on.
    assert {"agent_continuity.recovery.engine", "agent_continuity.replay"} <= set(loaded)


# The session modules form a tree under the facade: what SessionManager delegates
# to (lifecycle, live, restore, autosave, inspection, runner...) gets a Runtime,
# and nothing below session.py reaches back up into it. Only the front ends
# (the command line, the package's lazy exports and the demo) stand above it.
# replies.py runs each command on a SessionManager for the front ends
# (FRONT_END_PACKAGES above), and user_sessions.py scopes one to a user.
ABOVE_THE_FACADE = {
    "session.py",
    "__init__.py",
    "demo.py",
    "__main__.py",
    "replies.py",
    "user_sessions.py",
}

BELOW_THE_FACADE = sorted(
    path
    for path in PACKAGE_DIR.rglob("*.py")
    if path.relative_to(PACKAGE_DIR).parts[0] not in FRONT_END_PACKAGES
    and not (path.parent == PACKAGE_DIR and path.name in ABOVE_THE_FACADE)
)


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")


def test_the_walk_below_the_facade_finds_the_session_modules() -> None:
    names = {p.relative_to(PACKAGE_DIR).as_posix() for p in BELOW_THE_FACADE}
    assert {"live.py", "lifecycle.py", "restore.py", "runtime.py", "runner.py"} <= names
    assert {"storage/__init__.py", "recovery/engine.py"} <= names
    assert "session.py" not in names and "cli/main.py" not in names


@pytest.mark.parametrize(
    "path", BELOW_THE_FACADE, ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix()
)
def test_no_module_below_the_facade_imports_the_session_manager(path: Path) -> None:
    wrong = []
    for module, names in _imports(path, _package_of(path)):
        if module == "agent_continuity.session" or module.startswith("agent_continuity.session."):
            wrong.append(f"{module} ({', '.join(names)})")
        elif module == "agent_continuity":
            # `from agent_continuity import SessionManager` (or `session`) reaches the same.
            wrong += [f"agent_continuity.{n}" for n in names if n in ("session", "SessionManager")]
    assert wrong == [], f"{path.name} calls back into the facade: {wrong}"


def test_relative_imports_resolve_against_the_module_s_own_package(tmp_path: Path) -> None:
    """The checker itself: a relative import of the facade is caught too."""
    path = tmp_path / "sneaky.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .session import SessionManager\n"
        "def later():\n"
        "    from ..session import SessionManager\n"
    )
    assert [m for m, _ in _imports(path, "agent_continuity")][-2] == "agent_continuity.session"
    assert [m for m, _ in _imports(path, "agent_continuity.storage")][-1] == (
        "agent_continuity.session"
    )


# SessionManager is the API every front end calls (the command line today; an
# HTTP service, an MCP server, hooks and framework adapters next). Adding a
# public name to it is a decision, made here; plumbing belongs on the Runtime.
FACADE = {
    # sessions
    "start",
    "attach",
    "adopt",
    "update",
    "save",
    "interrupt",
    "end",
    "run",
    # reading
    "get",
    "sessions",
    "events",
    "load",
    "details",
    "damaged_sessions",
    "detect_interruptions",
    "verify",
    "analytics",  # issue 16: the figures `continuity analytics` and a dashboard show
    "heartbeat",  # issue 15: a web page renews its session's lease (`continuity serve`)
    "leave",  # issue 15: a page's unload ends its session after a grace a reload cancels
    "recovery_candidate",  # issue 15: the page asks about the session recover would pick
    "now",  # issue 15: the manager's clock, to judge a lease's expiry
    "search",  # issue 16: `continuity search` across every session
    # recovery
    "recover",
    "start_recovered",
    "analyse",
    "resume_task",
    "emergency",
    # issue 12: coding agents' transcripts (`continuity import`)
    "import_transcripts",
    # issue 12: the recovery prompt prepared for the SessionStart hook's fast path
    "prepare_recovery_prompt",
    # the manager itself
    "close",
    # read-only properties
    "store",
    "config",
    "project_root",
    "user_id",
    "observer",
}


def test_the_session_manager_s_public_surface_is_what_the_front_ends_need() -> None:
    from agent_continuity import SessionManager

    public = {name for name in dir(SessionManager) if not name.startswith("_")}
    assert public == FACADE
    properties = {n for n in public if isinstance(getattr(SessionManager, n), property)}
    assert properties == {"store", "config", "project_root", "user_id", "observer"}
