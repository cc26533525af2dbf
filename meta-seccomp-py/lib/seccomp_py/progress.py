"""Progress output and phase timing for long runs (boot, rounds, collection).

On a terminal one status line is redrawn in place (phase, detail, elapsed time); elsewhere (CI logs,
pipes) every change is a plain line with the seconds since start, so logs stay greppable.

    progress = Progress()                      # stderr; live if it is a TTY
    with progress.phase("boot"):
        ...
        progress.status("waiting for SSH")
    progress.log("round 1: 42 new syscalls")
    progress.timings                            # {"boot": 61.2, ...} seconds per phase, summed
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import IO, Dict, Iterator, List, Optional


class Progress:
    """Phase timer plus status output. Thread-safe enough for one worker and one ticker."""

    def __init__(self, stream: Optional[IO[str]] = None, live: Optional[bool] = None, quiet: bool = False,
                 clock=time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live and not quiet
        self.quiet = quiet
        self.clock = clock
        self.started = clock()
        self.timings: Dict[str, float] = {}
        self.order: List[str] = []
        self._phase: Optional[str] = None
        self._phase_started = 0.0
        self._detail = ""
        self._label = ""
        self.failed_in: Optional[str] = None
        self._lock = threading.Lock()
        self._ticker: Optional[threading.Thread] = None
        self._stop_ticker = threading.Event()
        self._line_width = 0

    # -- phases ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator[None]:
        """Time a phase; nested phases are not supported (the inner one wins the clock)."""
        outer, outer_started, outer_detail = self._phase, self._phase_started, self._detail
        outer_label = self._label
        if outer is not None:
            self._add(outer, self.clock() - outer_started)
        self._phase, self._phase_started, self._detail, self._label = name, self.clock(), detail, detail
        self._emit(f"{name}{': ' + detail if detail else ''}")
        self._start_ticker()
        try:
            yield
        except BaseException:
            if self.failed_in is None:
                self.failed_in = self.current()  # the innermost phase: where it really happened
            raise
        finally:
            self._add(name, self.clock() - self._phase_started)
            self._phase = outer
            self._phase_started = self.clock()
            self._detail = outer_detail
            self._label = outer_label
            if outer is None:
                self._stop()

    def _add(self, name: str, seconds: float) -> None:
        if name not in self.timings:
            self.order.append(name)
            self.timings[name] = 0.0
        self.timings[name] += max(0.0, seconds)

    def current(self) -> str:
        """The running phase and its detail, e.g. 'collect (round 2)'; empty outside phases."""
        if self._phase is None:
            return ""
        return f"{self._phase} ({self._label})" if self._label else self._phase

    def elapsed(self) -> float:
        return self.clock() - self.started

    def ordered_timings(self) -> Dict[str, float]:
        return {name: round(self.timings[name], 2) for name in self.order}

    # -- output ----------------------------------------------------------------------------------
    def status(self, detail: str) -> None:
        """A transient detail of the current phase (redrawn live, logged as a line otherwise)."""
        self._detail = detail
        prefix = f"{self._phase}: " if self._phase else ""
        self._emit(prefix + detail)

    def log(self, message: str) -> None:
        """A line that stays in the output."""
        if self.quiet:
            return
        with self._lock:
            self._clear_line()
            self.stream.write(f"[{self.elapsed():7.1f}s] {message}\n")
            self.stream.flush()
            self._redraw()

    def _emit(self, text: str) -> None:
        if self.quiet:
            return
        if not self.live:
            with self._lock:
                self.stream.write(f"[{self.elapsed():7.1f}s] {text}\n")
                self.stream.flush()
            return
        with self._lock:
            self._redraw()

    def _status_line(self) -> str:
        if self._phase is None:
            return ""
        spent = self.clock() - self._phase_started
        detail = f": {self._detail}" if self._detail else ""
        return f"[{self.elapsed():7.1f}s] {self._phase}{detail} ({spent:.0f} s)"

    def _clear_line(self) -> None:
        if self.live and self._line_width:
            self.stream.write("\r" + " " * self._line_width + "\r")
            self._line_width = 0

    def _redraw(self) -> None:
        if not self.live:
            return
        line = self._status_line()[:200]
        self._clear_line()
        if line:
            self.stream.write(line)
            self._line_width = len(line)
        self.stream.flush()

    def _start_ticker(self) -> None:
        if not self.live or self._ticker is not None:
            return
        self._stop_ticker.clear()

        def tick() -> None:
            while not self._stop_ticker.wait(1.0):
                with self._lock:
                    self._redraw()

        self._ticker = threading.Thread(target=tick, name="seccomp-py-progress", daemon=True)
        self._ticker.start()

    def _stop(self) -> None:
        if self._ticker is not None:
            self._stop_ticker.set()
            self._ticker.join(timeout=2)
            self._ticker = None
        if self.live:
            with self._lock:
                self._clear_line()
                self.stream.flush()

    def close(self) -> None:
        self._stop()
