#!/usr/bin/env python3
"""Lists import circles between the top-level modules of each Rust crate.

A module `a` imports `b` when a non-test line of a file under `a` names
`crate::b` (in a `use`, a `use crate::{b::X, ..}` group, or a path). Tests are
cut off at the first `#[cfg(test)]`, since a test may reach anywhere. Prints
every circle and exits 1 if there is one; with `--graph`, prints the edges.

Usage: scripts/import-circles.py [--graph] [CRATE_SRC_DIR ...]
(default: every `src` directory of the workspace members).
"""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\bcrate::\{", re.S)


def code(path: Path) -> str:
    text = path.read_text()
    text = text.split("#[cfg(test)]", 1)[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def group_heads(text: str):
    """Top-level items of every `crate::{...}` group, nested braces kept inside their item."""
    for m in GROUP.finditer(text):
        depth, item = 0, ""
        for c in text[m.end():]:
            if c == "}" and depth == 0:
                break
            depth += {"{": 1, "}": -1}.get(c, 0)
            if c == "," and depth == 0:
                yield item
                item = ""
            else:
                item += c
        yield item


def heads(text: str):
    for name in PATH.findall(text):
        yield name
    for item in group_heads(text):
        name = re.match(r"\s*([a-z_][a-z0-9_]*)", item)
        if name:
            yield name.group(1)


def graph(src: Path) -> dict[str, set[str]]:
    modules = {p.stem if p.is_file() else p.name for p in src.iterdir() if p.suffix == ".rs" or p.is_dir()}
    modules -= {"lib", "main"}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for file in src.rglob("*.rs"):
        top = file.relative_to(src).parts[0].removesuffix(".rs")
        if top not in modules:
            continue
        for name in heads(code(file)):
            if name in modules and name != top:
                edges[top].add(name)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def members() -> list[Path]:
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return [ROOT / m / "src" for m in manifest["workspace"]["members"] if (ROOT / m / "src").is_dir()]


def main() -> int:
    args = sys.argv[1:]
    show = "--graph" in args
    dirs = [Path(a) for a in args if a != "--graph"] or members()
    bad = 0
    for src in dirs:
        edges = graph(src)
        if show:
            for m in sorted(edges):
                print(f"{src.relative_to(ROOT) if src.is_absolute() else src}: {m} -> {', '.join(sorted(edges[m]))}")
        for c in circles(edges):
            bad += 1
            print(f"{src}: circle between {', '.join(c)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
