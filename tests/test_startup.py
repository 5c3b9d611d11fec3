"""Start-up as a new user meets it: the real command line, run with bad settings, ends in one clear
`error:` line on stderr and exit code 2 within 10 s, before anything is started or seeded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from pydantic import BaseModel, ValidationError
from pymongo import MongoClient

from server.cli import settings_problems
from server.config import Settings
from server.embedded_mongo import DATABASE_ENVIRONMENT, database_environment, free_loopback_port
from tests.harness import TEST_JWT_SECRET, ServerProcess, lines_until_serving

START_UP_BUDGET = 10  # seconds: the brief's bound for a failed start, not a speed measurement


def _environment(tmp_path, **settings: str) -> dict[str, str]:
    """This process's environment without any OrderPulse setting, plus `settings`."""
    names = {name.upper() for name in Settings.model_fields}
    base = {key: value for key, value in os.environ.items() if key.upper() not in names}
    return {**base, "JWT_SECRET": TEST_JWT_SECRET, "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "info",
            **settings}


def _run(tmp_path, command: str, **settings: str) -> subprocess.CompletedProcess[str]:
    # Run outside the repository, so that a developer's `.env` cannot change the settings.
    return subprocess.run([sys.executable, "-m", "server", command], cwd=tmp_path, capture_output=True,
                          text=True, env=_environment(tmp_path, **settings), timeout=START_UP_BUDGET)


def _the_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Serving on" not in result.stdout
    return lines[0]


def test_a_port_that_is_not_a_number_is_named_in_one_line(tmp_path):
    result = _run(tmp_path, "serve", PORT="abc")
    assert _the_one_error_line(result) == "error: PORT must be a whole number from 1 to 65535 (got 'abc')."


def test_a_port_out_of_range_is_refused_instead_of_serving_on_another(tmp_path):
    result = _run(tmp_path, "serve", PORT="99999")
    assert _the_one_error_line(result) == "error: PORT must be a whole number from 1 to 65535 (got '99999')."


def test_every_bad_setting_gets_one_line_naming_its_variable(tmp_path):
    result = _run(tmp_path, "demo", PORT="abc", HTTP_KEEP_ALIVE_SECONDS="0", ORDERPULSE_ENV="prod",
                  LOG_LEVEL="loud", HTTP_HEADER_TIMEOUT_SECONDS="soon")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert sorted(result.stderr.splitlines()) == [
        "error: HTTP_HEADER_TIMEOUT_SECONDS must be a number greater than 0 (got 'soon').",
        "error: HTTP_KEEP_ALIVE_SECONDS must be a whole number of at least 1 (got '0').",
        "error: LOG_LEVEL: unknown log level 'loud'; use one of critical, error, warning, info, debug, trace.",
        "error: ORDERPULSE_ENV must be 'development', 'production' or 'test' (got 'prod').",
        "error: PORT must be a whole number from 1 to 65535 (got 'abc').",
    ]


def test_a_bad_setting_in_a_url_or_secret_is_named_without_its_value():
    class Probe(BaseModel):
        mongodb_url: int
        jwt_secret: int

    try:
        Probe(mongodb_url="mongodb://ops:hunter22@db1/orderpulse", jwt_secret="s3cret-value")
    except ValidationError as exc:
        lines = settings_problems(exc)
    assert [line.split()[0] for line in lines] == ["MONGODB_URL", "JWT_SECRET"]
    assert not any("hunter22" in line or "s3cret" in line for line in lines)


def test_a_second_demo_on_a_taken_port_stops_before_starting_a_database_or_seeding(tmp_path, mongo):
    first = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": "taken_port"}, tmp_path / "first").start()
    try:
        result = _run(tmp_path, "demo", PORT=str(first.port))
        assert _the_one_error_line(result) == (
            f"error: port {first.port} on 127.0.0.1 is already in use; set PORT to a free port.")
        assert not (tmp_path / "data" / "mongo").exists(), "no embedded database may start"
        assert result.stdout == "", "no demo credentials: nothing was seeded"
        assert httpx.get(f"{first.url}/healthz").status_code == 200
    finally:
        first.stop()


def test_demo_refuses_production_before_it_binds_or_seeds(tmp_path, mongo):
    """Its admin's password is in the README: a production database must never get that account."""
    database = "demo_in_production"
    result = _run(tmp_path, "demo", ORDERPULSE_ENV="production", MONGODB_URL=mongo.url, MONGODB_DATABASE=database,
                  PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == (
        "error: `orderpulse demo` creates accounts with published passwords and does not run with "
        "ORDERPULSE_ENV=production; use `orderpulse serve` and `orderpulse create-user`.")
    assert result.stdout == "", "no demo credentials: nothing was seeded"
    with MongoClient(mongo.url, serverSelectionTimeoutMS=5000) as client:
        assert database not in client.list_database_names()


def test_a_host_that_is_not_this_machine_is_named_in_one_line(tmp_path):
    result = _run(tmp_path, "serve", HOST="192.0.2.1", PORT=str(free_loopback_port()))  # TEST-NET-1
    assert _the_one_error_line(result) == ("error: HOST 192.0.2.1 is not an address of this machine; set HOST "
                                           "to one of its addresses, such as 127.0.0.1 or 0.0.0.0.")


def test_an_unreachable_database_during_start_up_is_one_line_and_nothing_is_served(tmp_path):
    nothing_there = free_loopback_port()
    port = free_loopback_port()
    result = _run(tmp_path, "demo", PORT=str(port), MONGODB_URL=f"mongodb://127.0.0.1:{nothing_there}/orderpulse")
    line = _the_one_error_line(result)
    assert line.startswith("error: ") and "MONGODB_URL" in line
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port is released"


def test_the_demo_starts_one_embedded_database_and_says_serving_once_it_listens(tmp_path):
    port = free_loopback_port()
    process = subprocess.Popen([sys.executable, "-m", "server", "demo"], cwd=tmp_path, text=True,
                               env=_environment(tmp_path, PORT=str(port)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = lines_until_serving(process)
        assert seen and seen[-1].startswith(f"Serving on http://127.0.0.1:{port}"), "".join(seen)
        # Right away, with no retry: the port was bound before the line was printed.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        text = "".join(seen)
        assert text.count("embedded MongoDB") == 1, text
        assert "staff@orderpulse.demo" in text
    finally:
        process.terminate()
        process.wait(15)


def test_the_embedded_database_inherits_none_of_the_servers_settings(mongo, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "s3cret-value")
    monkeypatch.setenv("VAPID_PRIVATE_KEY", "a-pem")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    environment = database_environment()
    assert "JWT_SECRET" not in environment and "VAPID_PRIVATE_KEY" not in environment
    assert environment["LC_ALL"] == "C.UTF-8" and environment["PATH"] == os.environ["PATH"]
    # The suite's own nx-27017 was started the same way: only those names are in its environment.
    names = {entry.split(b"=", 1)[0].decode() for entry in
             Path(f"/proc/{mongo.process.pid}/environ").read_bytes().split(b"\0") if entry}
    assert names <= DATABASE_ENVIRONMENT | {name for name in names if name.startswith("LC_")}


def test_a_broker_url_of_an_unknown_scheme_is_one_line_without_the_url(tmp_path):
    result = _run(tmp_path, "serve", REDIS_URL="garbage://:hunter22@cache/0", PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == (
        "error: REDIS_URL: must start with one of redis://, rediss://, unix://, memory://, redis+cluster://, "
        "rediss+cluster://.")
    assert "hunter22" not in result.stderr


def test_a_broker_url_with_a_port_that_is_not_a_number_is_one_line(tmp_path):
    result = _run(tmp_path, "serve", REDIS_URL="redis://cache:sixty/0", PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == "error: REDIS_URL: has a port that is not a number from 0 to 65535."


def test_an_unreachable_redis_is_one_line_without_its_password_and_nothing_is_served(tmp_path, mongo):
    port = free_loopback_port()
    result = _run(tmp_path, "serve", REDIS_URL=f"redis://:hunter22@127.0.0.1:{free_loopback_port()}/0",
                  MONGODB_URL=mongo.url, MONGODB_DATABASE="unreachable_redis", PORT=str(port), LOG_LEVEL="warning")
    line = _the_one_error_line(result)
    assert line.startswith("error: Cannot use Redis at redis://127.0.0.1:") and line.endswith("Check REDIS_URL.")
    assert "hunter22" not in result.stderr + result.stdout
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port is released"


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path):
    result = _run(tmp_path, "serve", DATA_DIR="/proc/orderpulse", PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == ("error: DATA_DIR '/proc/orderpulse' cannot be created (No such file or "
                                           "directory); set DATA_DIR to a writable directory.")


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = _run(tmp_path, "serve", DATA_DIR=str(tmp_path / "a-file"), PORT=str(free_loopback_port()))
    assert _the_one_error_line(result).startswith(f"error: DATA_DIR '{tmp_path / 'a-file'}' cannot be created")


def test_a_database_name_mongodb_would_refuse_is_one_line(tmp_path):
    result = _run(tmp_path, "serve", MONGODB_DATABASE="a/b", PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == 'error: MONGODB_DATABASE: must be 1-63 bytes without / \\ . space " $ or NUL.'


def test_a_database_name_the_database_itself_refuses_is_one_line(tmp_path, mongo):
    # nx-27017 refuses more names than MongoDB's rule the settings check (here `*`, which only Windows refuses).
    result = _run(tmp_path, "serve", MONGODB_URL=mongo.url, MONGODB_DATABASE="orders*2", LOG_LEVEL="warning",
                  PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == ("error: MongoDB refuses the database name 'orders*2'; use letters, "
                                           "digits, _ and - in MONGODB_DATABASE (or MONGODB_URL's path).")


def test_a_mongodb_url_whose_password_was_not_escaped_is_one_line_without_it(tmp_path):
    # An unescaped "/" in the password ends the host list early, at a "port" that is not a number.
    result = _run(tmp_path, "serve", MONGODB_URL="mongodb://ops:hunter/22@127.0.0.1:27017/shop",
                  PORT=str(free_loopback_port()))
    assert _the_one_error_line(result).startswith("error: MONGODB_URL is not usable: Port contains non-digit characters.")
    assert "hunter" not in result.stderr


def test_sizes_and_rates_below_what_works_are_one_line_each(tmp_path):
    result = _run(tmp_path, "serve", MAX_BODY_BYTES="-1", WS_MAX_FRAME_BYTES="0", WS_MAX_FRAMES_PER_SECOND="0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert sorted(result.stderr.splitlines()) == [
        "error: MAX_BODY_BYTES must be a whole number of at least 1024 (got '-1').",
        "error: WS_MAX_FRAMES_PER_SECOND must be a whole number of at least 1 (got '0').",
        "error: WS_MAX_FRAME_BYTES must be a whole number of at least 1024 (got '0').",
    ]


def test_production_refuses_a_jwt_secret_shorter_than_its_hash(tmp_path):
    result = _run(tmp_path, "serve", ORDERPULSE_ENV="production", JWT_SECRET="short", PORT=str(free_loopback_port()))
    assert _the_one_error_line(result).startswith("error: JWT_SECRET must be at least 32 bytes when ORDERPULSE_ENV=production")


def test_an_smtp_url_of_another_scheme_is_one_line_without_its_password(tmp_path):
    result = _run(tmp_path, "serve", SMTP_URL="http://mailer:hunter22@mail.campus.test", PORT=str(free_loopback_port()))
    assert _the_one_error_line(result) == "error: SMTP_URL: must be smtp://[user:password@]host[:port] or the same with smtps://."
    assert "hunter22" not in result.stderr
