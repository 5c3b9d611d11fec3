"""The import contracts of pyproject.toml ([tool.importlinter]): layers point down, the domain is
pure, adapters ask the services; and only the order store queries orders. A change that breaks one
fails here, naming the import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the `server` package under `root`, with the repository's contracts."""
    return subprocess.run([*LINT_IMPORTS, str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_use_case_that_reaches_into_an_adapter_or_a_rule_that_does_io_is_refused(tmp_path):
    # A copy of the package with two offending modules, so the contracts are shown to bite.
    shutil.copytree(ROOT / "server", tmp_path / "server", ignore=shutil.ignore_patterns("__pycache__", "bench"))
    (tmp_path / "server" / "services" / "probe.py").write_text("from server.realtime import broker\n")
    (tmp_path / "server" / "domain" / "probe.py").write_text("import pymongo\n")
    (tmp_path / "server" / "http" / "probe.py").write_text("from server.models import Order\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    report = result.stdout
    assert "server.services is not allowed to import server.realtime" in report, report
    assert "server.domain.probe -> pymongo" in report, report
    assert "server.http.probe -> server.models" in report, report
    assert "3 broken" in report, report


# What reaches the orders collection: Beanie's class-level queries, the raw collection, an order's
# own writes. Only server/services/order_store.py may use them (the bench is a separate tool).
ORDER_STORE = ROOT / "server" / "services" / "order_store.py"
_ORDER_QUERIES = {"find", "find_one", "find_all", "find_many", "get", "aggregate", "count", "distinct",
                  "insert_one", "insert_many", "delete_all", "update_all", "bulk_writer", "inspect_collection",
                  "get_pymongo_collection", "get_motor_collection"}
_DOCUMENT_WRITES = {"insert", "save", "replace", "delete", "set", "update", "inc", "sync", "save_changes"}


def order_store_bypasses(source: str) -> list[str]:
    """`line: code` of each use of the orders collection in `source` that is not the store's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "Order" and node.attr in _ORDER_QUERIES:
                found.append(node)
            elif "order" in node.value.id.lower() and node.attr in _DOCUMENT_WRITES and node.value.id != "order_store":
                found.append(node)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get_collection" and any(
                isinstance(arg, ast.Constant) and arg.value == "orders" for arg in node.args):
            found.append(node)
    lines = source.splitlines()
    found.sort(key=lambda node: node.lineno)
    return [f"{node.lineno}: {lines[node.lineno - 1].strip()}" for node in found]


def test_only_the_order_store_queries_orders():
    offenders = {}
    for path in sorted((ROOT / "server").rglob("*.py")):
        if path == ORDER_STORE or "bench" in path.relative_to(ROOT).parts:
            continue
        if found := order_store_bypasses(path.read_text()):
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_a_service_that_queries_orders_itself_is_refused():
    # The check shown to bite on each way past the store.
    source = ("async def f(order, database):\n"
              "    await Order.find({}).to_list()\n"
              "    await Order.get_pymongo_collection().update_one({}, {})\n"
              "    await order.insert()\n"
              "    database.get_collection('orders')\n")
    assert [line.split(":")[0] for line in order_store_bypasses(source)] == ["2", "3", "4", "5"]
    assert order_store_bypasses(ORDER_STORE.read_text())  # the store itself is what it finds
