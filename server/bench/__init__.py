"""`orderpulse-bench`: load and latency benchmarks against a running OrderPulse server.

The tool creates its own store, staff, customers and orders through the public API, drives one
scenario (or all of them), prints a results table and optionally writes JSON and PNG charts.
It only ever targets the URLs it is given, and refuses non-loopback hosts unless told otherwise.
"""
