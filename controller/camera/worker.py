"""The cameras' own asyncio loop, in a thread of lower priority: the HTTP exchanges with the
cameras (digest challenges, TLS, reading the picture's chunks, the ONVIF calls) run there, so
that none of their steps holds the daemon's loop when a sensor edge comes in (bench/camera.py
measured them pushing the siren by 20-40 us at p50 when they ran on it).

The daemon's loop awaits `run(coro)`; cancelling that await cancels the work on the cameras'
loop. The thread asks the kernel for a nice value of +10 (Linux: per thread), so that on a busy
Pi the alarm loop is scheduled first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
NICE = 10


class CameraLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="officeguard-cameras", daemon=True)
        self._started = False

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux: one priority for all
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """`coro` on the cameras' loop; its result (or exception) here."""
        if not self._started or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the cameras' loop is not running")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(fut)

    def stop(self, last: Coroutine[Any, Any, None] | None = None, wait: float = 2.0) -> None:
        """Run `last` (closing the clients), then stop the loop and wait a little for it."""
        if not self._started or self.loop.is_closed():
            if last is not None:
                last.close()
            return

        async def finish() -> None:
            try:
                if last is not None:
                    await last
            except Exception:
                log.exception("cameras: closing failed")
            finally:
                asyncio.get_running_loop().stop()

        with contextlib.suppress(RuntimeError):  # already stopping
            asyncio.run_coroutine_threadsafe(finish(), self.loop)
        if threading.current_thread() is not self._thread:
            self._thread.join(wait)
