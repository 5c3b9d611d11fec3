"""mypy --strict over server/ (the settings in pyproject.toml, [tool.mypy]): a change that breaks a
type fails here, naming the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_server_is_type_checked_strictly():
    result = subprocess.run([sys.executable, "-m", "mypy", "server"], cwd=ROOT, capture_output=True, text=True,
                            timeout=280)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output  # 1: type errors (listed); 2: mypy itself failed
