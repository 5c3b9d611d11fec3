"""The argon2id cost of password hashes: production's defaults and floor, and hashes made at an older
cost redone at the next sign-in."""

from __future__ import annotations

import pytest

from server.config import ConfigurationError, Settings, resolve_password_cost
from server.domain.passwords import PasswordCost
from server.models import User
from server.services.tokens import Passwords
from tests.support import PASSWORD


def _settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_defaults_are_rfc_9106s_low_memory_profile():
    cost = resolve_password_cost(_settings())
    assert cost == PasswordCost(time_cost=3, memory_kib=65536, parallelism=4)
    assert Passwords(cost).hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not cost.below_owasp_floor()


@pytest.mark.parametrize(("time_cost", "memory_kib", "weak"), [
    (2, 19 * 1024, False), (2, 19 * 1024 - 1, True), (1, 46 * 1024, False), (1, 46 * 1024 - 1, True), (1, 8, True)])
def test_owasps_floor(time_cost, memory_kib, weak):
    assert PasswordCost(time_cost, memory_kib, 1).below_owasp_floor() is weak


def test_production_refuses_a_cost_below_the_floor_and_other_modes_allow_it():
    weak = {"password_hash_time_cost": 1, "password_hash_memory_kib": 8, "password_hash_parallelism": 1}
    with pytest.raises(ConfigurationError, match="below OWASP's argon2id floor"):
        resolve_password_cost(_settings(orderpulse_env="production", **weak))
    assert resolve_password_cost(_settings(orderpulse_env="test", **weak)) == PasswordCost(1, 8, 1)


def test_memory_below_what_the_lanes_need_is_refused_in_any_mode():
    with pytest.raises(ConfigurationError, match="at least 8 per lane .32 for PASSWORD_HASH_PARALLELISM=4"):
        resolve_password_cost(_settings(password_hash_memory_kib=16, password_hash_parallelism=4))


async def test_a_hash_of_another_cost_still_signs_in_and_is_redone_at_the_configured_cost(api_factory):
    old = await api_factory()  # the suite's cost: t=1, 8 KiB
    customer = await old.customer()
    before = (await User.get(customer.id)).password_hash
    assert before.startswith("$argon2id$v=19$m=8,t=1,p=1$")

    new = await api_factory(password_hash_time_cost=2, password_hash_memory_kib=16)
    assert (await new.post("/api/auth/login", json={"email": customer.user["email"], "password": "wrong-pass-1"})
            ).status_code == 401
    assert (await User.get(customer.id)).password_hash == before  # a wrong password changes nothing
    await new.login(customer.user["email"])
    after = (await User.get(customer.id)).password_hash
    assert after.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    await new.login(customer.user["email"])
    assert (await User.get(customer.id)).password_hash == after  # at the configured cost: left alone
    await old.login(customer.user["email"])  # and the older process still signs it in
