"""The prediction benchmark reads the histories packages ship (benchmarks/shipped_histories.py)."""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "shipped_histories", ROOT / "benchmarks" / "shipped_histories.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("shipped_histories", module)
    spec.loader.exec_module(module)
    return module


shipped_histories = _module()

GIT_LOG_STAT = """\
commit 1111111111111111111111111111111111111111
Author: A <a@example.invalid>
Date:   Fri Dec 16 23:14:57 2022 +0200

    [subset] Fix the repacker

 src/graph/gsubgpos-context.cc                      |  4 +-
 .../{gsubgpos-graph.cc => gsubgpos-context.cc}     |  2 +-
 .../data/in-house/tests/indic-special-cases.tests  |  2 +
 2 files changed, 4 insertions(+), 2 deletions(-)

commit 2222222222222222222222222222222222222222
Merge: 3333333 4444444
Author: A <a@example.invalid>
Date:   Thu Dec 15 10:00:00 2022 +0200

    Merge branch 'x'

commit 3333333333333333333333333333333333333333
Author: B <b@example.invalid>
Date:   Wed Dec 14 10:00:00 2022 +0200

    Move GSUB into its folder

    A body line that is not the subject.

 src/OT/Layout/{ => GSUB}/GSUB.hh                   | 12 ++++++------
 test/shaping/data/in-house/tests/indic-special-cases.tests | 1 +
 test/api/fonts/5f73.ttf                            | Bin 0 -> 1028 bytes
"""

GNU_CHANGELOG = """\
2022-12-11  Dmitry V. Levin  <ldv@strace.io>

\tstatx: decode new fields added to struct statx.
\t* src/statx.h (struct_statx): Add stx_mnt_id, stx_dio_mem_align,
\tand stx_dio_offset_align fields, update reserved2 field.
\t* src/statx.c (SYS_FUNC(statx)): Print the new fields.
\t* tests/xstatx.c, NEWS: Mention this change.

\tstatx: honor struct statx.stx_mask.
\t* src/statx.c (SYS_FUNC(statx)): Make printing of optional fields
\tdependent on the value of stx_mask.

2022-12-10  Someone Else  <se@example.invalid>

\tUpdate the release notes.
\tThe changes are:
\t* Only print elf capabilities once
\t* NEWS: Update.
"""


def test_git_log_stat_reads_each_commit_newest_first_with_its_files() -> None:
    commits = shipped_histories.git_log_stat(GIT_LOG_STAT)
    assert [c.sha[:1] for c in commits] == ["1", "2", "3"]
    newest, merge, oldest = commits
    assert newest.message == "[subset] Fix the repacker"
    # A shortened path becomes the one full path ending with its tail; a rename its new path.
    assert newest.files == (
        "src/graph/gsubgpos-context.cc",
        "test/shaping/data/in-house/tests/indic-special-cases.tests",
    )
    assert merge.files == ()
    assert oldest.message == "Move GSUB into its folder"
    assert oldest.files == (
        "src/OT/Layout/GSUB/GSUB.hh",
        "test/shaping/data/in-house/tests/indic-special-cases.tests",
        "test/api/fonts/5f73.ttf",
    )


def test_gnu_changelog_splits_entries_under_one_header_and_skips_prose_bullets() -> None:
    commits = shipped_histories.gnu_changelog(GNU_CHANGELOG, "strace")
    assert [(c.message, c.files) for c in commits] == [
        (
            "statx: decode new fields added to struct statx.",
            ("src/statx.h", "src/statx.c", "tests/xstatx.c", "NEWS"),
        ),
        ("statx: honor struct statx.stx_mask.", ("src/statx.c",)),
        ("Update the release notes.", ("NEWS",)),
    ]
    assert len({c.sha for c in commits}) == 3


def test_shipped_reads_each_changelog_once_and_leaves_out_those_naming_no_files(
    tmp_path: Path,
) -> None:
    many = "\n".join(
        GIT_LOG_STAT.replace("1111", f"{n:04d}").replace("3333", f"9{n:03d}") for n in range(200)
    )
    for package, text in [
        ("libfoo1", many),
        ("libfoo-dev", many),  # the same changelog from another package of the same source
        ("libbar", "commit " + "\ncommit ".join(f"{n:040x}" for n in range(60))),  # no stat
    ]:
        (tmp_path / package).mkdir()
        with gzip.open(tmp_path / package / "changelog.gz", "wt") as handle:
            handle.write(text)
    found = shipped_histories.shipped(tmp_path, min_commits=300)
    assert [(name, sum(1 for c in commits if c.files)) for name, commits in found] == [
        ("libfoo-dev", 400)
    ]


def test_the_prediction_benchmark_replays_shipped_histories_beside_the_repository(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    for n in range(14):
        (repo / f"mod{n % 3}.py").write_text(f"{n}\n")
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"step {n}"], cwd=repo, check=True)
    doc = tmp_path / "doc"
    (doc / "libfoo1").mkdir(parents=True)
    log = "".join(
        f"commit {n:040x}\nAuthor: A <a@example.invalid>\n\n    change {n % 4}\n\n"
        f" src/part{n % 4}.c | 2 +-\n src/part{n % 4}.h | 1 +\n tests/t{n % 5}.c | 1 +\n\n"
        for n in range(320, 0, -1)
    )
    with gzip.open(doc / "libfoo1" / "changelog.gz", "wt") as handle:
        handle.write(log)
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/prediction.py",
            "--repo",
            str(repo),
            "--doc",
            str(doc),
            "--session-commits",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[2/2] replaying libfoo1" in done.stderr  # progress
    rows = {
        " ".join(line.split()[:3]): line.split()
        for line in done.stdout.split("\n\n")[0].splitlines()[2:]
    }
    assert rows["libfoo1 1 c"][3] == "320"
    # The pooled row counts both histories' commits.
    assert rows["all 2 histories"][5] == str(14 + 320)
