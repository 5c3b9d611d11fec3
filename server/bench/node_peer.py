"""The fan-out peer: a Node.js server on the `ws` package broadcasting the same event frames.

`node` comes from the system (Debian's `nodejs`); `ws` is installed once by `npm install` from the
npm registry into the bench's cache folder (`$XDG_CACHE_HOME/orderpulse-bench/node`, else
~/.cache/...). The server answers a `subscribe` with an empty snapshot, as the transport floor
does, and on each event sends the payload to every subscriber with `ws`'s own `send`, the way a
Node service broadcasts; it times that loop like `orderpulse_fanout_seconds`. The bench drives it
over stdin/stdout, one line per message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

WS_VERSION = "8"
NPM_TIMEOUT_SECONDS = 180.0

PEER_SOURCE = r"""
'use strict';
const { WebSocketServer } = require('ws');
const readline = require('readline');
const subscribers = new Set();
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, backlog: 2048,
                                     maxPayload: 1 << 24 });
server.on('connection', (socket) => {
  socket.on('message', (data) => {
    let message;
    try { message = JSON.parse(data); } catch (error) { return; }
    if (message.type === 'subscribe') {
      socket.send(JSON.stringify({ type: 'snapshot', id: message.id, orders: [] }));
      subscribers.add(socket);
    }
  });
  socket.on('close', () => subscribers.delete(socket));
  socket.on('error', () => subscribers.delete(socket));
});
server.on('listening', () => process.stdout.write(`ready ${server.address().port}\n`));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [kind, data] = line.split(' ');
  if (kind !== 'event') { process.exit(0); }
  const payload = Buffer.from(data, 'base64');
  const started = process.hrtime.bigint();
  for (const socket of subscribers) { socket.send(payload, { binary: false }); }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`sent ${elapsed} ${subscribers.size}\n`);
});
"""


class PeerUnavailable(RuntimeError):
    """Node, npm or the ws package is missing: the reason, in one line."""


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orderpulse-bench" / "node"


def install_ws(folder: Path | None = None) -> Path:
    """The folder holding node_modules/ws, installed from the npm registry on first use."""
    folder = folder or cache_folder()
    if shutil.which("node") is None:
        raise PeerUnavailable("node is not installed (apt-get install nodejs): the Node ws peer is skipped")
    if (folder / "node_modules" / "ws" / "package.json").exists():
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("npm is not installed (apt-get install npm): the Node ws peer is skipped")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), f"ws@{WS_VERSION}"],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"npm install ws took over {NPM_TIMEOUT_SECONDS:g} s: the Node ws peer is skipped") from None
    if done.returncode != 0 or not (folder / "node_modules" / "ws").exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PeerUnavailable(f"npm install ws failed ({last}): the Node ws peer is skipped")
    return folder


class NodePeer:
    """The running peer: start it, send events, stop it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def start(self, timeout: float = 30.0) -> NodePeer:
        script = self.folder / "fanout-peer.js"
        script.write_text(PEER_SOURCE)
        self.process = await asyncio.create_subprocess_exec(
            "node", str(script), cwd=self.folder, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(self.folder / "node_modules")})
        kind, port = (await self._line(timeout)).split()
        if kind != "ready":
            raise PeerUnavailable(f"the Node ws peer said {kind!r} instead of ready")
        self.port = int(port)
        return self

    @property
    def version(self) -> str:
        """node and ws versions, as the report names the peer."""
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        ws = json.loads((self.folder / "node_modules" / "ws" / "package.json").read_text())["version"]
        return f"node {node}, ws {ws}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def send(self, payload: bytes, timeout: float = 60.0) -> tuple[float, int]:
        """Broadcast one event; the peer's loop time in seconds and the subscribers it went to."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"event " + base64.b64encode(payload) + b"\n")
        await self.process.stdin.drain()
        _, elapsed, count = (await self._line(timeout)).split()
        return float(elapsed), int(count)

    async def _line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise PeerUnavailable(f"the Node ws peer exited ({self.process.returncode})")
        return line.decode().strip()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(b"stop\n")
            await self.process.stdin.drain()
            await asyncio.wait_for(self.process.wait(), 10)
        except (OSError, TimeoutError):
            self.process.kill()
            await self.process.wait()
