"""How hard a password hash is to make: argon2id's work factors, and the floor production keeps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """argon2id's work factors. The defaults are argon2-cffi's, RFC 9106's low-memory profile
    (3 passes over 64 MiB on 4 lanes, ~0.1 s of CPU per check on one core of the machines here)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def below_owasp_floor(self) -> bool:
        """Weaker than OWASP's minimum for argon2id: 19 MiB with 2 passes, or 46 MiB with 1."""
        return self.memory_kib < 19 * 1024 or (self.time_cost < 2 and self.memory_kib < 46 * 1024)
