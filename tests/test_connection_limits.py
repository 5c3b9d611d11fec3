"""What one HTTP connection may hold (server/uvicorn_adapter/http_limits.py), against real server processes:
a deadline for the request head, a header size limit, and a limit on open connections."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from server.http.security_headers import API_CSP
from tests.harness import ServerProcess
from tests.support import until_sync

HEADER_TIMEOUT = 1.0
MAX_HEADER_BYTES = 8192
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(mongo, tmp_path_factory):
    process = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": "connection_limits",
                             "HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
                             "HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES)},
                            tmp_path_factory.mktemp("limits")).start()
    yield process
    process.stop()


def _status_on_a_new_connection(server: ServerProcess) -> int:
    with _connect(server) as sock:
        return _get(sock)[0]


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _until_closed(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """What the server sends until it closes the connection (True), or until `within` s pass (False)."""
    deadline = time.monotonic() + within
    received = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _get(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One keep-alive request on a raw connection."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    return _read_response(sock)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response, read up to its content-length."""
    sock.settimeout(5)
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.partition(b"\r\n\r\n")[2]) < int(
            _response(raw)[1].get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {raw!r}"
        raw += chunk
    return _response(raw)


def _assert_security_headers(headers: dict[str, str]) -> None:
    """The refusals written below the app carry the headers its own answers do (issue 25, finding 11)."""
    assert (headers["x-content-type-options"], headers["referrer-policy"], headers["content-security-policy"]) == (
        "nosniff", "no-referrer", API_CSP), headers


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(server):
    sock = _connect(server)
    received, closed = _until_closed(sock, within=HEADER_TIMEOUT + 10)
    assert closed and received == b""


def test_a_half_sent_head_is_answered_408_and_closed(server):
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Trickle: 1")
    received, closed = _until_closed(sock, within=HEADER_TIMEOUT + 10)
    assert closed
    status, headers, body = _response(received)
    assert status == 408 and headers["connection"] == "close"
    _assert_security_headers(headers)
    assert json.loads(body) == {"success": False, "message": "Request headers not received within 1 s."}


def test_a_100_kib_header_is_answered_431(server):
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 100 * 1024 + b"\r\n\r\n")
    received, closed = _until_closed(sock, within=10)
    assert closed
    status, headers, body = _response(received)
    assert status == 431 and headers["connection"] == "close"
    _assert_security_headers(headers)
    assert json.loads(body)["message"] == f"Request line and headers too large: at most {MAX_HEADER_BYTES} bytes."


def test_a_request_that_is_not_http_is_answered_400_in_the_apis_shape_with_its_headers(server):
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
    received, closed = _until_closed(sock, within=10)
    assert closed
    status, headers, body = _response(received)
    assert status == 400 and headers["connection"] == "close"
    _assert_security_headers(headers)
    assert json.loads(body) == {"success": False, "message": "Invalid HTTP request received."}


def test_an_endless_header_line_does_not_grow_the_server(server):
    """uvicorn's parser buffers a header line until it ends: 16 MiB of one line was 16 MiB more RSS."""
    before = _rss_bytes(server.process.pid)
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Endless: ")
    try:
        for _ in range(64):
            sock.sendall(b"a" * (MiB // 4))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered 431 and closed: what this test wants
    grown = _rss_bytes(server.process.pid) - before
    assert grown < 4 * MiB, f"server RSS grew {grown / MiB:.1f} MiB"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_requests_within_the_limits_are_unaffected(server):
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):  # one kept-alive connection
            assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"X-Pad": "p" * (MAX_HEADER_BYTES - 1024)}).status_code == 200
        # A body several times the header limit, mostly in the same read as its head.
        response = client.post("/api/auth/login", json={"email": "nobody@campus.test", "password": "x" * 30_000})
        assert response.status_code in (400, 401) and response.json()["success"] is False


def test_a_body_and_the_time_between_requests_are_not_held_to_the_header_deadline(server):
    sock = _connect(server)
    assert _get(sock)[0] == 200
    time.sleep(HEADER_TIMEOUT * 1.5)  # on purpose: idle between requests is keep-alive's, not the head's
    assert _get(sock)[0] == 200
    body = json.dumps({"email": "nobody@campus.test", "password": "correct-horse-1"}).encode()
    sock.sendall(b"POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    time.sleep(HEADER_TIMEOUT * 1.5)  # on purpose: a body that comes after the header deadline
    sock.sendall(body)
    status, _, answer = _read_response(sock)
    assert status == 401 and json.loads(answer)["message"] == "Invalid email or password."


def test_a_websocket_is_not_closed_by_the_header_deadline(server):
    register = httpx.post(f"{server.url}/api/auth/register", json={
        "name": "Asha Rao", "email": "ws-deadline@campus.test", "password": "correct-horse-1",
        "role": "student", "registerNumber": "21CS0999"})
    assert register.status_code == 201, register.text
    token = register.json()["data"]["accessToken"]
    with ws_connect(f"{server.ws_url}?token={token}", open_timeout=5) as socket_:
        time.sleep(HEADER_TIMEOUT * 1.5)  # on purpose: past the deadline an unfinished head would have
        socket_.send(json.dumps({"type": "ping"}))
        assert json.loads(socket_.recv(timeout=5))["type"] == "pong"


def test_past_the_connection_limit_a_new_connection_is_refused_and_open_ones_keep_working(mongo, tmp_path):
    limited = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": "connection_cap",
                             "HTTP_MAX_CONNECTIONS": "3"}, tmp_path).start()
    try:
        held = [_connect(limited) for _ in range(3)]
        for sock in held:
            assert _get(sock)[0] == 200
        refused = _connect(limited)
        refused.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        received, closed = _until_closed(refused, within=10)
        status, headers, body = _response(received)
        assert closed and status == 503 and headers["retry-after"] == "1"
        _assert_security_headers(headers)
        assert json.loads(body) == {"success": False,
                                    "message": "The server is at its limit of 3 open connections; retry shortly."}
        with pytest.raises(InvalidStatus) as upgrade:
            ws_connect(limited.ws_url, open_timeout=5)
        assert upgrade.value.response.status_code == 503
        _assert_security_headers({name.lower(): value for name, value in upgrade.value.response.headers.raw_items()})
        assert _get(held[0])[0] == 200

        held.pop().close()
        until_sync(lambda: _status_on_a_new_connection(limited) == 200, 10, interval=0.02,
                   message="the server to see the close and admit a new connection")
        assert "HTTP_MAX_CONNECTIONS" in limited.log_path.read_text()
    finally:
        limited.stop()
