"""Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.scenario = "setup"
        self._last = 0.0
        self._width = 0

    def begin(self, scenario: str) -> None:
        self.finish()
        self.scenario = scenario
        self.note(f"running {scenario}")

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        interval = 0.2 if self.tty else 2.0
        if not force and now - self._last < interval:
            return
        self._last = now
        line = f"[{self.scenario}] {text}"
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line that stays (warnings, phase changes)."""
        if not self.enabled:
            return
        self.finish()
        self.stream.write(f"[{self.scenario}] {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        self._width = 0
