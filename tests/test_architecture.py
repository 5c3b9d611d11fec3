"""The import contracts of pyproject.toml ([tool.importlinter]): layers point down, the domain is
pure, adapters ask the services, the bench stands apart, no modules import each other in a cycle, and
only the order store queries orders. A change that breaks one fails here, naming the import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
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


def test_a_use_case_that_reaches_into_an_adapter_a_rule_that_does_io_or_a_cycle_is_refused(tmp_path):
    # A copy of the package with offending modules, so the contracts are shown to bite.
    shutil.copytree(ROOT / "server", tmp_path / "server", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "server" / "services" / "probe.py").write_text("from server.realtime import broker\n")
    (tmp_path / "server" / "domain" / "probe.py").write_text("import pymongo\n")
    (tmp_path / "server" / "http" / "probe.py").write_text("from server.models import Order\n")
    (tmp_path / "server" / "bench" / "probe.py").write_text("from server.config import Settings\n")
    # Two handler modules that import each other, as campusbite and auth_routes once did.
    (tmp_path / "server" / "http" / "cycle_probe.py").write_text("from server.http import auth_routes\n")
    with (tmp_path / "server" / "http" / "auth_routes.py").open("a") as module:
        module.write("\nfrom server.http import cycle_probe  # noqa: E402\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    report = result.stdout
    assert "server.services is not allowed to import server.realtime" in report, report
    assert "server.domain.probe -> pymongo" in report, report
    assert "server.http.probe -> server.models" in report, report
    assert "No cycles are allowed in server.http." in report, report
    assert ".auth_routes -> .cycle_probe" in report or ".cycle_probe -> .auth_routes" in report, report
    assert "server.bench.probe -> server.config" in report, report
    assert "5 broken" in report, report


# --- no HTTP below the edges ---------------------------------------------------------------------
# Services, rules, documents and shapes say what happened (server/domain/errors.py); the edges in
# server/http choose the status. The realtime edge keeps its WebSocket close codes (4401, 1008 ...),
# which are not HTTP statuses.
BELOW_HTTP = ("domain", "services", "models", "realtime", "views.py", "config.py")
# Statuses other servers answered our own requests with (a webhook delivery, a push): recorded, not chosen.
OUTBOUND_STATUSES = {"services/webhooks.py", "services/push.py", "models/webhook.py", "views.py"}
HTTP_NAMES = {"ApiError", "HTTPException", "HTTPStatus"}
STATUS_WORDS = {"status_code", "http_status"}


def _is_status(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and 100 <= node.value <= 599


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _exception_classes(trees: list[ast.Module]) -> set[str]:
    """The names of the exception classes these modules define (any class descending from a name
    ending in Error or Exception), with those names."""
    classes = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    known: set[str] = set()
    while True:
        more = {c.name for c in classes
                if any(_name(b) in known or _name(b).endswith(("Error", "Exception")) for b in c.bases)} - known
        if not more:
            return known
        known |= more


def http_below_http(server: Path) -> list[str]:
    """Every place under `server` below the HTTP layer that names an HTTP error type, builds an
    exception from an HTTP status, or keeps a `status_code` of its own; sorted."""
    modules = {}
    for entry in BELOW_HTTP:
        path = server / entry
        for module in [path] if path.is_file() else sorted(path.rglob("*.py")):
            modules[module.relative_to(server).as_posix()] = ast.parse(module.read_text(), str(module))
    exceptions = _exception_classes(list(modules.values()))
    found = []
    for where, tree in modules.items():
        for node in ast.walk(tree):
            line = f"{where}:{getattr(node, 'lineno', 0)}"
            names = {alias.name.split(".")[-1] for alias in node.names} if isinstance(
                node, (ast.Import, ast.ImportFrom)) else set()
            if isinstance(node, (ast.Name, ast.Attribute)):
                names.add(_name(node))
            elif isinstance(node, (ast.keyword, ast.arg)) and node.arg:
                names.add(node.arg)
            if names & HTTP_NAMES:
                found.append(f"{line} names {sorted(names & HTTP_NAMES)}")
            if names & STATUS_WORDS and where not in OUTBOUND_STATUSES:
                found.append(f"{line} keeps a status code ({sorted(names & STATUS_WORDS)})")
            if isinstance(node, ast.Call) and (_name(node.func) in exceptions or _name(node.func) in HTTP_NAMES) \
                    and any(_is_status(arg) for arg in [*node.args, *(k.value for k in node.keywords)]):
                found.append(f"{line} builds {_name(node.func)} from an HTTP status")
    return sorted(found)


def test_no_http_status_or_http_error_below_the_http_layer():
    assert http_below_http(ROOT / "server") == []


def test_an_http_status_raised_by_a_service_is_found(tmp_path):
    # A copy of the package with offending modules, so the scan is shown to bite.
    shutil.copytree(ROOT / "server", tmp_path / "server", ignore=shutil.ignore_patterns("__pycache__", "bench"))
    (tmp_path / "server" / "services" / "probe.py").write_text(
        "from server.http.errors import ApiError\n"
        "from server.domain.errors import Conflict\n"
        "def refuse():\n"
        "    raise ApiError(409, 'taken')\n"
        "def conflict():\n"
        "    raise Conflict('taken', 409)\n")
    (tmp_path / "server" / "domain" / "probe.py").write_text(
        "class Refusal(Exception):\n"
        "    status_code = 400\n")
    assert http_below_http(tmp_path / "server") == [
        "domain/probe.py:2 keeps a status code (['status_code'])",
        "services/probe.py:1 names ['ApiError']",
        "services/probe.py:4 builds ApiError from an HTTP status",
        "services/probe.py:4 names ['ApiError']",
        "services/probe.py:6 builds Conflict from an HTTP status",
    ]


def test_the_bench_contract_forbids_every_server_module_but_the_domain():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    bench = next(contract for contract in contracts if contract["id"] == "bench-stands-apart")
    modules = {f"server.{path.stem}" for path in (ROOT / "server").iterdir()
               if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()}
    assert set(bench["forbidden_modules"]) == modules - {"server.bench", "server.domain"}


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
