"""`orderpulse-bench`: load and latency benchmarks against a running OrderPulse server.

The tool creates its own store, staff, customers and orders through the public API, drives one
scenario (or all of them), prints a results table and optionally writes JSON and PNG charts.
It only ever targets the URLs it is given, and refuses non-loopback hosts unless told otherwise.
"""

from __future__ import annotations

import sys


def main() -> int:
    """The console script: one clear line, not an ImportError, when the bench extra is missing."""
    try:
        from server.bench.cli import main as run
    except ImportError as missing:
        print(f"orderpulse-bench needs the bench extra ({missing.name} is not installed): "
              "pip install -e '.[bench]'", file=sys.stderr)
        return 2
    return run()
