#!/usr/bin/env python3
"""Checks the structure ARCHITECTURE.md describes, file by file under src/:
  - every module imports only modules on its own floor or below (the floors are
    ARCHITECTURE.md's, from the ground up; a module missing from the table is an error
    too, so a new module is placed on purpose; imports are `crate::<module>` paths outside
    test modules and comments);
  - every file opens with a `//!` comment saying what it owns;
  - no file is longer than 700 lines.
Exit status: 0 when all hold, 1 otherwise, with each problem listed.

    scripts/structure.py    # run from the crate's root
"""
import re
import sys
from pathlib import Path

FLOORS = [
    # Foundations: settings types, errors, logging and metrics, shutdown, retry.
    ["config", "invalid", "cursor", "telemetry", "shutdown", "retry", "panic", "patch"],
    # Stores and clients.
    ["db", "redis", "queue", "storage", "outbound", "instances", "sealed", "ratelimit"],
    # Domains.
    ["jobs", "scheduler", "realtime", "events", "health", "auth", "webhooks", "databases"],
    # Process wiring.
    ["settings", "state", "worker", "relay"],
    # HTTP.
    ["http", "console"],
    # Entry points.
    ["modes", "cli", "lib", "main"],
]
FLOOR = {module: level for level, modules in enumerate(FLOORS) for module in modules}
MAX_LINES = 700

src = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve() / "src"
problems = []
for path in sorted(src.rglob("*.rs")):
    top = path.relative_to(src).parts[0].removesuffix(".rs")
    name = path.relative_to(src.parent)
    whole = path.read_text()
    if not whole.startswith("//!"):
        problems.append(f"{name}: does not open with a //! comment saying what it owns")
    lines = whole.count("\n")
    if lines > MAX_LINES:
        problems.append(f"{name}: {lines} lines, over {MAX_LINES}")
    if top not in FLOOR:
        problems.append(f"{name}: module {top!r} has no floor in scripts/structure.py")
        continue
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", whole)[0]
    text = re.sub(r"//[^\n]*", "", text)
    for used in sorted(set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))):
        if used in FLOOR and FLOOR[used] > FLOOR[top]:
            problems.append(f"{name}: {top} (floor {FLOOR[top]}) imports {used} (floor {FLOOR[used]})")
for problem in problems:
    print(problem)
print(f"{len(problems)} structure problem(s)" if problems else "layers point down; every file is documented and under 700 lines")
sys.exit(1 if problems else 0)
