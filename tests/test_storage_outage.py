"""A full disk under the database: writes are a clear 503 with Retry-After (no traceback, one warning
line), reads still work, `/readyz` says 503 with the reason, and once space is freed the server
serves again by itself, without a restart."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from server.app import RequestEdge
from server.domain import messages
from server.http import ops_routes
from server.services.outage import StorageHealth, storage_failure_reason
from tests.harness import create_admin
from tests.support import metric_value, until_sync
from tests.test_database_outage import PASSWORD, children, embedded_server, port_of, register

STORAGE_UNAVAILABLE = {"success": False, "message": messages.STORAGE_UNAVAILABLE}
DISK_SIZE = "32m"


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MiB tmpfs of its own, so filling it touches nothing else on the machine."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}); needs root"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros into `disk` until it is full; returns the file to delete to free the space."""
    filler = disk / "filler"
    chunk = bytes(1 << 20)
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(url: str, email: str) -> dict[str, str]:
    response = httpx.post(f"{url}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert response.status_code == 200, response.text
    return bearer(response.json()["data"]["accessToken"])


def place_order(url: str, customer: dict[str, str], store_id: str, item_id: str) -> httpx.Response:
    session = httpx.post(f"{url}/api/orders/checkout-session", headers=customer, timeout=30,
                         json={"storeId": store_id, "items": [{"menuItemId": item_id, "quantity": 1}]})
    assert session.status_code == 200, session.text
    return httpx.post(f"{url}/api/orders", headers=customer, timeout=30,
                      json={"checkoutToken": session.json()["data"]["checkoutToken"]})


def test_a_full_disk_is_a_clear_503_and_readiness_says_why_until_space_is_freed(small_disk, tmp_path):
    server = embedded_server(small_disk)
    server.log_path = tmp_path / "server.log"  # not on the disk that fills up
    server.start()
    try:
        url = server.url
        (mongo,) = children(server.process.pid)
        create_admin({"MONGODB_URL": f"mongodb://127.0.0.1:{port_of(mongo)}", "MONGODB_DATABASE": "orderpulse"},
                     email="root@campus.test", password=PASSWORD, name="Root Admin")
        admin = sign_in(url, "root@campus.test")
        store = httpx.post(f"{url}/api/stores", headers=admin, timeout=30,
                           json={"name": "Campus Cafe", "location": "Block A", "upiId": "cafe@upi"}).json()["data"]
        made = httpx.post(f"{url}/api/admin/users", headers=admin, timeout=30, json={
            "name": "Kavya Staff", "email": "staff@campus.test", "password": PASSWORD, "role": "store_employee",
            "storeId": store["id"]})
        assert made.status_code == 201, made.text
        staff = sign_in(url, "staff@campus.test")
        item = httpx.post(f"{url}/api/stores/{store['id']}/menu", headers=staff, timeout=30,
                          json={"name": "Masala Chai", "price": 20}).json()["data"]
        customer = bearer(register(url, "asha@campus.test")["accessToken"])
        placed = place_order(url, customer, store["id"], item["id"])
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["data"]["id"]
        ready_id = place_order(url, customer, store["id"], item["id"]).json()["data"]["id"]
        for path, body in (("payment-status", {"paymentStatus": "success"}), ("status", {"status": "processing"}),
                           ("status", {"status": "ready"})):
            moved = httpx.patch(f"{url}/api/orders/{ready_id}/{path}", headers=staff, json=body, timeout=30)
            assert moved.status_code == 200, moved.text

        ticket = httpx.post(f"{url}/api/auth/stream-ticket", headers=customer, timeout=30).json()["data"]["ticket"]

        filler = fill(small_disk)
        # The order number's upsert, the payment's compare-and-set, a pickup code's attempt, an insert
        # and sign-in's counter: each was a 500 (TypeError, WriteError), a misleading 409, 429 or 401.
        paid = httpx.patch(f"{url}/api/orders/{order_id}/payment-status", headers=staff, timeout=30,
                           json={"paymentStatus": "success"})
        code = httpx.post(f"{url}/api/orders/{ready_id}/verify-otp", headers=staff, json={"otp": "000000"},
                          timeout=30)
        # A stream ticket is spent by deleting it: not deleted is not "invalid or expired".
        stream = httpx.get(f"{url}/api/orders/{order_id}/events", params={"ticket": ticket}, timeout=30)
        refused = [place_order(url, customer, store["id"], item["id"]), paid, code, stream,
                   httpx.post(f"{url}/api/auth/login", json={"email": "asha@campus.test", "password": PASSWORD},
                              timeout=30),
                   httpx.post(f"{url}/api/auth/register", timeout=30, json={
                       "name": "Ravi Menon", "email": "ravi@campus.test", "password": PASSWORD, "role": "student",
                       "registerNumber": "21CS0002"})]
        for response in refused:
            assert (response.status_code, response.json()) == (503, STORAGE_UNAVAILABLE), response.text
            assert int(response.headers["retry-after"]) > 0
        # Reads do not need the disk.
        read = httpx.get(f"{url}/api/orders/{order_id}", headers=customer, timeout=30)
        assert read.status_code == 200 and read.json()["data"]["paymentStatus"] == "pending", read.text
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503, ready.text
        assert ready.json() == {"status": "unavailable", "database": True, "storage": False, "broker": True,
                                "reason": messages.STORAGE_NOT_READY.format(reason="database or disk is full")}

        assert metric_value(httpx.get(f"{url}/metrics", timeout=30).text, "orderpulse_storage_refusing_writes") == 1

        filler.unlink()
        until_sync(lambda: httpx.get(f"{url}/readyz", timeout=30).status_code == 200, 30, message="readiness")
        assert place_order(url, customer, store["id"], item["id"]).status_code == 201
        paid = httpx.patch(f"{url}/api/orders/{order_id}/payment-status", headers=staff, timeout=30,
                           json={"paymentStatus": "success"})
        assert paid.status_code == 200, paid.text
        assert server.process.poll() is None and children(server.process.pid) == [mongo], "nothing restarted"
        assert metric_value(httpx.get(f"{url}/metrics", timeout=30).text, "orderpulse_storage_refusing_writes") == 0

        log = server.log_path.read_text()
        assert "Traceback" not in log, log
        # One line for the requests' 503s, at most one per background loop, none per request.
        assert log.count("answering 503 until it accepts them again") == 1, log
        assert "database storage accepts writes again" in log, log
    finally:
        server.stop()


@pytest.mark.parametrize("error, reason", [
    (WriteError("database or disk is full", 8, {"code": 8, "errmsg": "database or disk is full"}),
     "database or disk is full"),
    (WriteError("Out of disk space", 14031, {"code": 14031, "errmsg": "Out of disk space"}), "Out of disk space"),
    (OperationFailure("WiredTigerRecordStore::insertRecord: No space left on device", 8),
     "WiredTigerRecordStore::insertRecord: No space left on device"),
    (WriteError("attempt to write a readonly database", 8, {"code": 8, "errmsg": "attempt to write a readonly database"}),
     "attempt to write a readonly database"),
    (BulkWriteError({"writeErrors": [{"index": 0, "code": 8, "errmsg": "database or disk is full"}]}),
     "database or disk is full"),
    (DuplicateKeyError("E11000 duplicate key error", 11000), None),
    (OperationFailure("unknown operator: $foo", 2), None),
    (ValueError("disk is full"), None),
])
def test_only_refusals_for_lack_of_storage_count_as_storage_failures(error, reason):
    assert storage_failure_reason(error) == reason


async def test_any_other_refusal_stays_a_bug_a_500_logged_with_its_traceback(caplog):
    """The storage handler catches every OperationFailure to look at it; what is not a storage
    failure goes on to the last line for bugs, as before."""

    async def refused(request):
        raise OperationFailure("unknown operator: $foo", 2)

    runtime = SimpleNamespace(storage=StorageHealth(logging.getLogger("orderpulse")))
    app = Starlette(routes=[Route("/refused", refused)], middleware=[Middleware(RequestEdge)],
                    exception_handlers=ops_routes.database_outage_handlers())
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/refused")
    assert (response.status_code, response.json()) == (500, {"success": False, "message": messages.INTERNAL_ERROR})
    assert "unhandled error on GET /refused" in caplog.text and "Traceback" in caplog.text
    assert runtime.storage.reason is None
