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


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every import in ``path`` (TYPE_CHECKING ones too): (absolute module, names)."""
    here = "agent_continuity.cli"
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


CLI_FILES = sorted((PACKAGE_DIR / "cli").glob("*.py"))


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: p.name)
def test_the_command_line_imports_only_the_public_api(path: Path) -> None:
    wrong = []
    for module, names in _imports(path):
        if module != "agent_continuity" and not module.startswith("agent_continuity."):
            continue  # the standard library and click
        if module == "agent_continuity.cli" or module.startswith("agent_continuity.cli."):
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
