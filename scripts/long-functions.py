#!/usr/bin/env python3
"""Lists Rust functions longer than a limit (default 80 lines), tests excluded.

A function runs from its `fn` line to the line of its closing brace, found by
counting braces outside strings, chars and comments. Code after the first
`#[cfg(test)]` of a file is skipped. Exits 1 if any function is too long.

Usage: scripts/long-functions.py [--max N] PATH ...   (files or directories)
"""

import re
import sys
from pathlib import Path

FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def strip(line: str) -> str:
    """The line without string and char literals and `//` comments."""
    line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(?:\\.|[^'\\])'", "' '", line)
    return line.split("//", 1)[0]


def functions(path: Path):
    lines = path.read_text().split("#[cfg(test)]", 1)[0].splitlines()
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            code = strip(lines[j])
            if not opened and ";" in code and "{" not in code:
                break  # a declaration without a body
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if opened and depth <= 0:
                yield m.group(1), i + 1, j - i + 1
                break
            j += 1
        i += 1


def main() -> int:
    args = sys.argv[1:]
    limit = 80
    if args[:1] == ["--max"]:
        limit, args = int(args[1]), args[2:]
    files = []
    for a in args:
        p = Path(a)
        files.extend(sorted(p.rglob("*.rs")) if p.is_dir() else [p])
    long = [(n, f, at, name) for f in files for name, at, n in functions(f) if n > limit]
    for n, f, at, name in sorted(long, reverse=True):
        print(f"{n:5} {f}:{at} {name}")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
