#!/usr/bin/env python3
"""Checks that every module of the crate imports only modules on its own floor or below.

The floors are ARCHITECTURE.md's, from the ground up; a module missing from the table is
an error too, so a new module is placed on purpose. Imports are `crate::<module>` paths
outside test modules and comments. Exit status: 0 when every import points down (or
across), 1 otherwise, with each offending import listed.

    scripts/layers.py    # run from the crate's root
"""
import re
import sys
from pathlib import Path

FLOORS = [
    # Foundations: settings types, errors, logging and metrics, shutdown, retry.
    ["config", "invalid", "cursor", "telemetry", "shutdown", "retry", "panic"],
    # Stores and clients.
    ["db", "redis", "queue", "storage", "outbound", "instances"],
    # Domains.
    ["jobs", "scheduler", "realtime", "events", "health", "auth", "webhooks"],
    # Process wiring.
    ["settings", "state", "worker"],
    # HTTP.
    ["http", "console"],
    # Entry points.
    ["modes", "cli", "lib", "main"],
]
FLOOR = {module: level for level, modules in enumerate(FLOORS) for module in modules}

src = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve() / "src"
problems = []
for path in sorted(src.rglob("*.rs")):
    top = path.relative_to(src).parts[0].removesuffix(".rs")
    if top not in FLOOR:
        problems.append(f"{path.relative_to(src.parent)}: module {top!r} has no floor in scripts/layers.py")
        continue
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", path.read_text())[0]
    text = re.sub(r"//[^\n]*", "", text)
    for used in sorted(set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))):
        if used in FLOOR and FLOOR[used] > FLOOR[top]:
            problems.append(
                f"{path.relative_to(src.parent)}: {top} (floor {FLOOR[top]}) imports {used} (floor {FLOOR[used]})"
            )
for problem in problems:
    print(problem)
print(f"{len(problems)} layer problem(s)" if problems else "layers point down")
sys.exit(1 if problems else 0)
