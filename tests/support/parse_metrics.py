"""Parses Prometheus exposition text from stdin with the Prometheus client's own parser
(PyPI prometheus-client), independent of the code that wrote it, and prints each family's
name, type and sample count as JSON. A line the parser refuses fails the run."""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = [
    {"name": f.name, "type": f.type, "samples": len(f.samples)}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
