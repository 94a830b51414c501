"""``floopy serve``'s side of the log store process: started before the workers, restarted
with backoff if it dies, stopped after them.

The process runs in a session of its own, so a Ctrl-C meant for the gateway does not stop it
before the workers have written their last rows; it stops itself if the gateway disappears
(it checks its parent each round).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from floopy.logstore.process import EXIT_LOCKED

log = logging.getLogger("floopy.log")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # seconds up after which the backoff starts again from the first
STOP_TIMEOUT = 120.0  # the last round may carry a large journal


class StoreSupervisor:
    def __init__(
        self,
        env: dict[str, str],
        say: Callable[[str], None],
        command: list[str] | None = None,
    ) -> None:
        self.env = env
        self.say = say
        self.command = command or [sys.executable, "-m", "floopy", "store"]
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a spawn and a stop never cross
        self._thread = threading.Thread(target=self._watch, name="floopy-store-supervisor")
        self._thread.daemon = True

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def stop(self) -> None:
        """Asks the process to finish its last round, and waits for it."""
        with self._lock:
            self._stopping.set()
            process = self.process
            if process is None or process.poll() is not None:
                return
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.say(
                f"log store: no exit after {STOP_TIMEOUT:.0f} s; killed (rows stay in the journals)"
            )
            process.kill()
            process.wait()
        self._thread.join(5)

    def _spawn(self) -> None:
        arguments = ["--supervisor", str(os.getpid()), "--restarts", str(self.restarts)]
        self.process = subprocess.Popen(
            [*self.command, *arguments], env=self.env, start_new_session=True
        )
        self.say(f"log store: process {self.process.pid} (floopy store), supervised")

    def _watch(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set():
            process = self.process
            assert process is not None
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > STABLE_AFTER:
                backoff = BACKOFF_FIRST
            reason = (
                "another store process owns the data directory"
                if code == EXIT_LOCKED
                else f"exit code {code}"
            )
            self.say(f"log store: process {process.pid} ended ({reason}); restart in {backoff:g} s")
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            with self._lock:
                if self._stopping.is_set():
                    return
                self.restarts += 1
                self._spawn()
