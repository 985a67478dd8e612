#!/usr/bin/env python3
"""Checks that docs/configuration.md lists every FERRY_* environment variable.

Collects each `FERRY_NAME` in the tracked sources (Rust, shell, Python, YAML,
TOML, Dockerfiles, .ci) and each name in the backticked first column of the
tables in docs/configuration.md's "Environment variables" section. A table
name with a placeholder (`FERRY_SECRET_<NAME>_<KEY>`) covers every name that
starts with the part before the placeholder. Prints what is missing from the
tables, and table names no source uses, and exits 1 if there is either.

Usage: scripts/env-table.py
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
NAME = re.compile(r"\bFERRY_[A-Z0-9_]*[A-Z0-9]")
SOURCES = ["*.rs", "*.sh", "*.py", "*.yaml", "*.yml", "*.toml", "*Dockerfile*", ".ci/*"]
# Names made up by unit tests of the env readers: no binary reads them.
EXAMPLES = {"FERRY_X", "FERRY_TEST_NEVER_SET_BY_ANYONE"}


def source_names() -> dict[str, str]:
    files = subprocess.run(
        ["git", "ls-files", "--", *SOURCES], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    found: dict[str, str] = {}
    for f in files:
        path = ROOT / f
        if path.name == "env-table.py" or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for name in NAME.findall(line):
                found.setdefault(name, f"{f}:{n}")
    return found


def table_names() -> tuple[set[str], set[str]]:
    text = DOC.read_text()
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    exact, prefixes = set(), set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for name in re.findall(r"`(FERRY_[^`]*)`", first):
            if "<" in name:
                prefixes.add(name.split("<", 1)[0].rstrip("_"))
            else:
                exact.add(name)
    return exact, prefixes


def main() -> int:
    found = source_names()
    exact, prefixes = table_names()
    covered = lambda name: name in exact or any(name.startswith(p) for p in prefixes)
    missing = sorted(n for n in found if n not in EXAMPLES and not covered(n))
    unused = sorted(n for n in exact if n not in found)
    unused += sorted(p + "_<...>" for p in prefixes if not any(n.startswith(p) for n in found))
    for n in missing:
        print(f"{found[n]}: {n} is not in docs/configuration.md's tables", file=sys.stderr)
    for n in unused:
        print(f"docs/configuration.md: {n} is in a table but in no source", file=sys.stderr)
    return 1 if missing or unused else 0


if __name__ == "__main__":
    sys.exit(main())
