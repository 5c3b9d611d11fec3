"""The import contracts of pyproject.toml ([tool.importlinter]): layers point down, the domain is
pure, adapters ask the services, the bench stands apart. A change that breaks one fails here, naming
the import."""

from __future__ import annotations

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


def test_a_use_case_that_reaches_into_an_adapter_or_a_rule_that_does_io_is_refused(tmp_path):
    # A copy of the package with two offending modules, so the contracts are shown to bite.
    shutil.copytree(ROOT / "server", tmp_path / "server", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "server" / "services" / "probe.py").write_text("from server.realtime import broker\n")
    (tmp_path / "server" / "domain" / "probe.py").write_text("import pymongo\n")
    (tmp_path / "server" / "http" / "probe.py").write_text("from server.models import Order\n")
    (tmp_path / "server" / "bench" / "probe.py").write_text("from server.config import Settings\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    report = result.stdout
    assert "server.services is not allowed to import server.realtime" in report, report
    assert "server.domain.probe -> pymongo" in report, report
    assert "server.http.probe -> server.models" in report, report
    assert "server.bench.probe -> server.config" in report, report
    assert "4 broken" in report, report


def test_the_bench_contract_forbids_every_server_module_but_the_domain():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    bench = next(contract for contract in contracts if contract["id"] == "bench-stands-apart")
    modules = {f"server.{path.stem}" for path in (ROOT / "server").iterdir()
               if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()}
    assert set(bench["forbidden_modules"]) == modules - {"server.bench", "server.domain"}
