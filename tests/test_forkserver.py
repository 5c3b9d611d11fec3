"""The suite's fork server (tests/forkserver.py) stands for `python -m server serve`: each server
it forks runs with the test's environment and log, exits as the command does, and a server that
needs other import-time settings gets a fork server of its own."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.harness import ServerProcess, drop_database, fork_server


def test_a_forked_server_has_its_own_environment_log_and_exit_status(mongo, tmp_path):
    database = f"t_fork_{uuid.uuid4().hex[:8]}"
    server = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database}, tmp_path / "one").start()
    try:
        parent = int(Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert parent == fork_server(server.env).process.pid  # forked, not a new interpreter
        assert f"Serving on http://127.0.0.1:{server.port}" in server.log_path.read_text()  # its PORT, its log
        assert server.process.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            server.process.wait(0.05)
        server.stop()
        assert server.process.returncode == -signal.SIGTERM  # uvicorn re-raises the signal it stopped for
        # Started again on the same port, then killed: the exit is read for each process.
        server.start()
        server.kill()
        assert server.process.returncode == -signal.SIGKILL
    finally:
        server.kill()
        drop_database(mongo.url, database)


def test_a_server_with_other_import_time_settings_gets_another_fork_server(tmp_path):
    plain = ServerProcess({}, tmp_path / "plain").env
    assert fork_server(plain) is fork_server({**plain, "MONGODB_DATABASE": "elsewhere"})  # read at start-up
    other = fork_server({**plain, "PYTHONPATH": str(tmp_path)})  # read by the interpreter, before any import
    assert other is not fork_server(plain) and other.process.poll() is None
    other.close()
