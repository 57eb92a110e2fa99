#!/usr/bin/env python3
"""Finds import cycles between the files of a Rust crate.

A copy of the team's shared tool (shared/tools/module-cycles.py), kept in the repository
so that `.ci/run` on a fresh clone can keep the module graph free of cycles.

Reads every `.rs` file under `src/` (run it from the crate's root, or pass the root),
resolves each `crate::…`, `super::…` and `self::…` path to the file that defines that
module, and prints every group of files that reach each other (a strongly connected
component of more than one file), with the names that tie each pair. A parent module
that only declares or re-exports its children (`mod x;`, `pub use x::Y;`) is not counted
as importing them. Exit status: 0 with no cycle, 1 with at least one.

    scripts/module-cycles.py            # the crate in the current directory
    scripts/module-cycles.py --quiet    # just the count
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

args = [a for a in sys.argv[1:] if not a.startswith("--")]
quiet = "--quiet" in sys.argv
root = Path(args[0] if args else ".").resolve()
src = root / "src"
if not src.is_dir():
    sys.exit(f"no src/ under {root}")


def module_of(path: Path) -> tuple:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


files = {module_of(p): p for p in src.rglob("*.rs")}
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def strip(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    # test modules import what they test; they are not part of the structure
    return re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]


def resolve(base: tuple, head: str, rest: list) -> tuple:
    if head == "crate":
        mod = ()
    elif head == "self":
        mod = base
    else:
        mod = base[:-1]
    while rest and rest[0] == "super":
        mod = mod[:-1]
        rest = rest[1:]
    best = mod if mod in files else None
    cur = mod
    for seg in rest:
        cur = cur + (seg,)
        if cur in files:
            best = cur
        else:
            break
    return best, rest


edges = defaultdict(lambda: defaultdict(set))
for mod, path in files.items():
    text = strip(path.read_text(errors="replace"))
    refs = []
    for m in USE_GROUP.finditer(text):
        prefix = [s for s in m.group(2).split("::") if s]
        for item in re.split(r"[,\s]+", m.group(3)):
            item = item.strip().split(" as ")[0]
            if item and re.match(r"[A-Za-z_]", item):
                refs.append((m.group(1), prefix + [s for s in item.split("::") if s and s != "{"]))
    for m in PATH.finditer(text):
        refs.append((m.group(1), [s for s in m.group(2).split("::") if s]))
    for head, rest in refs:
        target, _ = resolve(mod, head, rest)
        if target is None or target == mod:
            continue
        # a parent naming its own child module (declaring or re-exporting it) is not an import
        if target[: len(mod)] == mod and len(target) > len(mod):
            continue
        name = rest[-1] if rest else "*"
        edges[mod][target].add(name)

# Tarjan's strongly connected components
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges.get(v, {}):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(comp)


for v in list(files):
    if v not in index:
        visit(v)


def show(mod):
    return str(files[mod].relative_to(root))


if quiet:
    print(f"{len(sccs)} cycle(s), {sum(len(c) for c in sccs)} files in them")
else:
    for i, comp in enumerate(sorted(sccs, key=len, reverse=True), 1):
        members = set(comp)
        print(f"cycle {i}: {len(comp)} files")
        for a in sorted(comp, key=show):
            for b in sorted(edges[a], key=show):
                if b in members:
                    print(f"  {show(a)} -> {show(b)}: {', '.join(sorted(edges[a][b]))}")
    print(f"{len(sccs)} cycle(s)" if sccs else "no cycles")
sys.exit(1 if sccs else 0)
