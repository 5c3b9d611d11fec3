"""Identity: registration, sign-in, rotating refresh tokens, and every token failure."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import jwt

from server.models import RefreshToken

from tests.clock import ManualClock
from tests.harness import TEST_JWT_SECRET
from tests.support import PASSWORD


def forge(claims: dict, secret: str = TEST_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims_for(user_id: str, **changes) -> dict:
    now = datetime.now(timezone.utc)
    base = {"sub": user_id, "role": "student", "typ": "access", "jti": "x", "iat": int(now.timestamp()),
            "exp": now + timedelta(minutes=5)}
    base.update(changes)
    return base


async def test_register_login_and_profile(api):
    response = await api.post("/api/auth/register", json={
        "name": "Asha Rao", "email": "Asha@Campus.Test", "password": PASSWORD, "role": "student",
        "registerNumber": "21CS1001"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert set(data) == {"accessToken", "refreshToken", "user"}
    assert data["user"]["email"] == "asha@campus.test" and "passwordHash" not in data["user"]
    claims = jwt.decode(data["accessToken"], TEST_JWT_SECRET, algorithms=["HS256"])
    assert {"sub", "role", "iat", "exp", "jti"} <= set(claims) and claims["role"] == "student"
    login = await api.post("/api/auth/login", json={"email": "asha@campus.test", "password": PASSWORD})
    assert login.status_code == 200
    me = await api.get("/api/users/me", headers={"Authorization": f"Bearer {login.json()['data']['accessToken']}"})
    profile = me.json()["data"]
    assert (profile["trustTier"], profile["noShowCount"], profile["orderingRestrictedUntil"]) == ("good", 0, None)


async def test_duplicate_email_is_409(api):
    actor = await api.customer()
    response = await api.post("/api/auth/register", json={
        "name": "Copy", "email": actor.user["email"], "password": PASSWORD, "role": "faculty", "employeeId": "F1"})
    assert response.status_code == 409


async def test_public_registration_cannot_create_admins_or_staff_of_a_store(api):
    response = await api.post("/api/auth/register", json={
        "name": "Mallory", "email": "admin@campus.test", "password": PASSWORD, "role": "admin"})
    assert response.status_code == 400
    assert response.json()["message"] == "role must be one of: student, faculty, store_employee."
    store = await api.store()
    # A store employee signs up for no store, whatever the body names (an admin assigns one).
    response = await api.post("/api/auth/register", json={
        "name": "Mallory", "email": "staff@campus.test", "password": PASSWORD, "role": "store_employee",
        "employeeId": "E1", "storeName": "Campus Cafe", "storeId": store.id, "store_id": store.id})
    assert response.status_code == 201, response.text
    assert (response.json()["data"]["user"]["storeId"], response.json()["data"]["user"]["awaitingStore"]) == (None, True)


async def test_a_password_with_outer_spaces_signs_in_exactly_as_registered(api):
    password = "  spaced out pass  "
    response = await api.post("/api/auth/register", json={
        "name": "Asha Rao", "email": "spaces@campus.test", "password": password, "role": "student",
        "registerNumber": "21CS1002"})
    assert response.status_code == 201
    assert (await api.post("/api/auth/login", json={"email": "spaces@campus.test", "password": password})).status_code == 200
    stripped = await api.post("/api/auth/login", json={"email": "spaces@campus.test", "password": password.strip()})
    assert stripped.status_code == 401


async def test_wrong_email_and_wrong_password_get_the_same_answer(api):
    actor = await api.customer()
    expected = {"success": False, "message": "Invalid email or password."}
    for body in ({"email": actor.user["email"], "password": "wrong-password"},
                 {"email": "nobody@campus.test", "password": PASSWORD}):
        response = await api.post("/api/auth/login", json=body)
        assert response.status_code == 401 and response.json() == expected


async def test_missing_token(api):
    response = await api.get("/api/users/me")
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Access denied. No token provided."}


async def test_forged_malformed_and_none_algorithm_tokens(api):
    actor = await api.customer()
    header, payload, _ = actor.access_token.split(".")
    none_token = jwt.encode(claims_for(actor.id), None, algorithm="none")
    bad = [
        forge(claims_for(actor.id), secret="not-the-secret-" + "y" * 40),
        f"{header}.{payload}.",
        none_token,
        "garbage",
        forge(claims_for(actor.id, typ="checkout")),
        forge({k: v for k, v in claims_for(actor.id).items() if k != "exp"}),
        forge(claims_for(actor.id), algorithm="HS512"),
    ]
    for token in bad:
        response = await api.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.json() == {"success": False, "message": "Invalid token."}, token
    response = await api.get("/api/users/me", headers={"Authorization": f"Basic {actor.access_token}"})
    assert response.json()["message"] == "Invalid token."


async def test_expired_token(api):
    actor = await api.customer()
    token = forge(claims_for(actor.id, exp=datetime.now(timezone.utc) - timedelta(seconds=5)))
    response = await api.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Token expired."}


async def test_token_of_a_deleted_user(api_factory):
    api = await api_factory(user_cache_seconds=0)
    actor = await api.customer()
    from server.models import User
    await (await User.get(actor.id)).delete()
    response = await api.get("/api/users/me", actor)
    assert response.status_code == 401
    assert response.json() == {"success": False, "message": "Invalid token. User not found."}


async def test_a_cached_token_still_expires(api_factory, clock):
    api = await api_factory(clock=clock)
    actor = await api.customer()
    assert (await api.get("/api/users/me", actor)).status_code == 200
    clock.advance(api.runtime.settings.access_token_lifetime.total_seconds() - 1)
    assert (await api.get("/api/users/me", actor)).status_code == 200
    clock.advance(1)
    response = await api.get("/api/users/me", actor)
    assert response.json()["message"] == "Token expired."


async def test_a_token_from_the_future_is_refused(api_factory, clock):
    api = await api_factory(clock=clock)
    actor = await api.customer()
    behind = await api_factory(clock=ManualClock(clock.now() - timedelta(seconds=5)))  # a second process
    response = await behind.get("/api/users/me", actor)
    assert response.status_code == 401 and response.json()["message"] == "Invalid token."


async def test_refresh_rotates_and_reuse_revokes_the_family(api_factory, clock):
    api = await api_factory(clock=clock, refresh_reuse_seconds=10)
    actor = await api.customer()
    first = await api.post("/api/auth/refresh", json={"refreshToken": actor.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["data"]["refreshToken"]
    assert rotated != actor.refresh_token
    clock.advance(10.001)  # past the reuse interval: a reuse, not a second tab
    reuse = await api.post("/api/auth/refresh", json={"refreshToken": actor.refresh_token})
    assert reuse.status_code == 401
    assert reuse.json()["message"] == "Refresh token reuse detected. Please sign in again."
    # The thief's reuse also kills the legitimate newer token.
    after = await api.post("/api/auth/refresh", json={"refreshToken": rotated})
    assert after.status_code == 401


async def test_logout_revokes_the_refresh_token(api):
    actor = await api.customer()
    response = await api.post("/api/auth/logout", json={"refreshToken": actor.refresh_token})
    assert response.status_code == 200
    refresh = await api.post("/api/auth/refresh", json={"refreshToken": actor.refresh_token})
    assert refresh.status_code == 401
    assert refresh.json()["message"] == "Invalid or expired refresh token."


async def test_admin_creates_staff_never_exposing_the_hash(api):
    admin = await api.admin()
    store = await api.store(admin)
    response = await api.post("/api/admin/users", admin, json={
        "name": "New Staff", "email": "newstaff@campus.test", "password": PASSWORD, "role": "store_employee",
        "storeId": store.id})
    assert response.status_code == 201
    assert response.json()["data"]["storeId"] == store.id
    assert "password" not in str(response.json()).lower()
    missing_store = await api.post("/api/admin/users", admin, json={
        "name": "X", "email": "x@campus.test", "password": PASSWORD, "role": "store_employee"})
    assert missing_store.status_code == 400
    customer = await api.customer()
    forbidden = await api.post("/api/admin/users", customer, json={
        "name": "X", "email": "y@campus.test", "password": PASSWORD, "role": "admin"})
    assert forbidden.status_code == 403


async def test_a_refresh_repeated_within_the_reuse_interval_answers_the_same_pair(api_factory, clock):
    api = await api_factory(clock=clock, refresh_reuse_seconds=10)
    actor = await api.customer()
    body = {"refreshToken": actor.refresh_token}
    # Two tabs waking together: both at once, then a third a moment later (React StrictMode).
    first, second = await asyncio.gather(api.post("/api/auth/refresh", json=body),
                                         api.post("/api/auth/refresh", json=body))
    clock.advance(9.5)
    third = await api.post("/api/auth/refresh", json=body)
    pairs = {(r.status_code, r.json()["data"]["accessToken"], r.json()["data"]["refreshToken"])
             for r in (first, second, third)}
    assert len(pairs) == 1 and next(iter(pairs))[0] == 200
    _, access, refresh = next(iter(pairs))
    assert (await api.get("/api/users/me", headers={"Authorization": f"Bearer {access}"})).status_code == 200
    # The pair is the session's one successor: it rotates on once, as any refresh token does.
    onward = await api.post("/api/auth/refresh", json={"refreshToken": refresh})
    assert onward.status_code == 200
    # Nothing but digests is stored: neither token of the pair is anywhere in the database's records.
    records = await RefreshToken.get_pymongo_collection().find({}).to_list()
    assert records and not any(token in str(records) for token in (access, refresh))


async def test_a_refresh_repeated_after_the_reuse_interval_still_revokes_the_family(api_factory, clock):
    api = await api_factory(clock=clock, refresh_reuse_seconds=2)
    actor = await api.customer()
    body = {"refreshToken": actor.refresh_token}
    rotated = (await api.post("/api/auth/refresh", json=body)).json()["data"]["refreshToken"]
    clock.advance(2.5)
    reuse = await api.post("/api/auth/refresh", json=body)
    assert (reuse.status_code, reuse.json()["message"]) == (401, "Refresh token reuse detected. Please sign in again.")
    assert (await api.post("/api/auth/refresh", json={"refreshToken": rotated})).status_code == 401
    # And a token of a revoked family is no second tab either.
    assert (await api.post("/api/auth/refresh", json=body)).status_code == 401
