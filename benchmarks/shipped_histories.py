"""Real project histories that installed packages ship: the changelogs in /usr/share/doc.

Debian packages ship their upstream project's history as ``changelog.gz``, in
one of two shapes this module reads into commits (newest first, as written):

* ``git log --stat`` output (harfbuzz, fontconfig, p11-kit, xz, libbsd,
  cairo, fribidi...): each commit's sha, subject and the files of its stat.
  Stat lines shorten long paths to ``.../tail`` and write renames as
  ``dir/{old => new}/name``; a shortened path becomes the one full path seen
  elsewhere in the log that ends with its tail (left shortened if there is no
  single one), and a rename becomes its new path.
* GNU ChangeLogs (strace, gnupg, gmp, wget, grep, tar, coreutils...): dated
  author headers, each over one or more entries, an entry being its summary
  line and the ``* path (function): what`` lines naming its files. Several
  files may share a line (``* a.c, b.c: ...``).

Changelogs that list commits without their files (libx11's ``git log``
without ``--stat``, release notes) say nothing about which files change
together and are left out, as are the same changelog shipped by several
packages (kept once) and histories of fewer than ``MIN_COMMITS`` commits.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import defaultdict
from pathlib import Path

from agent_continuity.recovery.file_ranking import Commit

DOC = Path("/usr/share/doc")
MIN_COMMITS = 300  # commits naming files

_COMMIT = re.compile(r"^commit ([0-9a-f]{40})", re.M)
_STAT = re.compile(r"^ (\S.*?) +\| +(?:\d+|Bin)")
_RENAME = re.compile(r"\{([^{}]*) => ([^{}]*)\}")
_GNU_HEADER = re.compile(r"^\d{4}-\d\d-\d\d\s+\S")
_GNU_FILES = re.compile(r"^\s*\*\s+([^:(]+)")
_PATH = re.compile(r"[A-Za-z0-9_.+\-/]+")
# Files without a dot or a folder that ChangeLogs name; any other dotless word
# after a "*" is prose (a bullet list), not a file.
_BARE_FILES = frozenset(
    "Makefile NEWS README THANKS TODO AUTHORS ChangeLog configure bootstrap INSTALL "
    "HACKING MAINTAINERS COPYING GNUmakefile".split()
)


def _is_path(token: str) -> bool:
    return bool(_PATH.fullmatch(token)) and (
        token in _BARE_FILES or (("/" in token or "." in token[1:]) and token[-1] != ".")
    )


def _renamed(path: str) -> str:
    """A stat line's path after the rename it may describe (``a/{b => c}/d``: ``a/c/d``)."""
    path = _RENAME.sub(lambda m: m.group(2), path)
    if " => " in path:
        path = path.split(" => ", 1)[1]
    path = path.replace("{", "").replace("}", "")  # a rename whose brace was shortened away
    return re.sub(r"/{2,}", "/", path).strip("/")


def git_log_stat(text: str) -> list[Commit]:
    """The commits of ``git log --stat`` output, newest first, shortened paths resolved."""
    starts = list(_COMMIT.finditer(text))
    raw: list[tuple[str, str, list[str]]] = []
    for n, start in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        subject = ""
        files: list[str] = []
        for line in text[start.end() : end].splitlines():
            if line.startswith("    ") and not subject and line.strip():
                subject = line.strip()
            elif stat := _STAT.match(line):
                files.append(_renamed(stat.group(1).strip()))
        raw.append((start.group(1), subject, files))
    full = {path for _, _, files in raw for path in files if not path.startswith("...")}
    by_tail: dict[str, set[str]] = defaultdict(set)
    for path in full:
        parts = path.split("/")
        for i in range(1, len(parts)):
            by_tail["/".join(parts[i:])].add(path)
    out = []
    for sha, subject, files in raw:
        resolved = []
        for path in files:
            if path.startswith(".../"):
                tail = path[4:]
                matches = by_tail.get(tail, set())
                path = next(iter(matches)) if len(matches) == 1 else path
            resolved.append(path)
        out.append(Commit(sha, tuple(dict.fromkeys(resolved)), subject))
    return out


def gnu_changelog(text: str, name: str = "changelog") -> list[Commit]:
    """The entries of a GNU ChangeLog, newest first: each summary with the files it names."""
    entries: list[tuple[str, list[str]]] = []
    subject, files = "", []
    in_files = False

    def close() -> None:
        nonlocal subject, files, in_files
        if subject or files:
            entries.append((subject, files))
        subject, files, in_files = "", [], False

    for line in text.splitlines():
        if _GNU_HEADER.match(line):
            close()
            continue
        stripped = line.strip()
        if not stripped:
            continue
        named = _GNU_FILES.match(line)
        tokens = [t.strip() for t in re.split(r"[,\s]+", named.group(1))] if named else []
        if named and tokens and all(_is_path(t) for t in tokens if t):
            in_files = True
            files += [t for t in tokens if t and t not in files]
            continue
        if not line.startswith(("\t", " ")):
            continue
        if in_files and not line.startswith(("\t ", "\t\t", "        ")):
            # A new summary after an entry's file lines: the next entry under one header.
            if stripped[0].isupper() or re.match(r"^[\w./-]+: ", stripped):
                close()
        if not subject and not in_files:
            subject = stripped
    close()
    return [
        Commit(f"{name}-{len(entries) - n}", tuple(files), subject)
        for n, (subject, files) in enumerate(entries)
    ]


def read(path: Path) -> list[Commit]:
    """One changelog's commits, newest first (empty if it names no files)."""
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    text = data.decode("utf-8", "replace")
    if len(_COMMIT.findall(text)) > 50:
        return git_log_stat(text)
    if len(re.findall(r"^\d{4}-\d\d-\d\d\s", text, re.M)) > 50:
        return gnu_changelog(text, path.parent.name)
    return []


def shipped(doc: Path = DOC, min_commits: int = MIN_COMMITS) -> list[tuple[str, list[Commit]]]:
    """Every usable history under ``doc``: (package, commits newest first), each changelog once."""
    seen: set[str] = set()
    out = []
    for path in sorted(doc.glob("*/changelog.gz")):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        if digest in seen:
            continue
        seen.add(digest)
        commits = read(path)
        if sum(1 for c in commits if c.files) >= min_commits:
            out.append((path.parent.name, commits))
    return out
