"""Per-kernel notification runtime: the loaded drivers and the on-commit delivery thread.

``queue`` hands the ids of the rows it queued to ``kick`` once their transaction commits; a
single background thread per kernel delivers them, so a request never waits for a mail server.
The thread exits after a short idle spell and is started again by the next kick; ``stop``
ends it (also called at interpreter exit). Whatever the thread misses — a crash, a restart,
a failure to retry — the periodic ``deliver_due`` job picks up from the table.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from yiwang.notify.drivers import Notifier, load_drivers

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

log = logging.getLogger("yiwang.notify")

#: The kernel attribute holding its runtime (set on first use).
_ATTR = "_yiwang_notify_runtime"
_CREATE = threading.Lock()


class Dispatcher:
    """Delivers message ids handed over after commit, in one background thread.

    Parameters
    ----------
    kernel: the kernel (held weakly: the thread never keeps a discarded kernel alive).
    idle_seconds: how long the thread waits for more work before exiting.
    """

    def __init__(self, kernel: Kernel, idle_seconds: float = 2.0) -> None:
        self._kernel = weakref.ref(kernel)
        self._idle = idle_seconds
        self._cond = threading.Condition()
        self._ids: set[int] = set()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._stopped = False

    def kick(self, ids: Iterable[int]) -> None:
        """Deliver ``ids`` soon (never blocks on delivery)."""
        with self._cond:
            if self._stopped:
                return
            self._ids.update(ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="yiwang-notify", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        from yiwang.notify.outbox import deliver_ids

        while True:
            with self._cond:
                if not self._ids and not self._stopped:
                    self._cond.wait(self._idle)
                if self._stopped or not self._ids:
                    self._thread = None
                    self._cond.notify_all()
                    return
                ids, self._ids = sorted(self._ids), set()
                self._busy = True
            try:
                kernel = self._kernel()
                if kernel is not None:
                    deliver_ids(kernel, ids)
            except Exception:
                # The rows stay due: the periodic job delivers them. Never let the thread die
                # with an exception nobody sees.
                log.exception("通知投递线程出错（%d 条待下次重试）", len(ids))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every handed-over id has been processed (tests, orderly shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._ids and not self._busy, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting work and end the thread after its current message batch."""
        with self._cond:
            self._stopped = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


class Runtime:
    """One kernel's notification state: its drivers (built on first use) and dispatcher."""

    def __init__(self, kernel: Kernel) -> None:
        self.settings = kernel.settings.notify
        self._kernel_settings = kernel.settings
        self._drivers: dict[str, Notifier] | None = None
        self.dispatcher = Dispatcher(kernel)
        weakref.finalize(kernel, self.dispatcher.stop, 5.0)  # also runs at interpreter exit

    @property
    def drivers(self) -> dict[str, Notifier]:
        """The configured channels' drivers, by name."""
        if self._drivers is None:
            self._drivers = load_drivers(self._kernel_settings)
        return self._drivers


def runtime(kernel: Kernel) -> Runtime:
    """The kernel's notification runtime, created on first use."""
    found: Runtime | None = kernel.__dict__.get(_ATTR)
    if found is None:
        with _CREATE:
            found = kernel.__dict__.get(_ATTR)
            if found is None:
                found = Runtime(kernel)
                setattr(kernel, _ATTR, found)
    return found


def stop(kernel: Kernel, timeout: float = 10.0) -> None:
    """Stop the kernel's delivery thread (app shutdown); queued rows stay for the job."""
    found: Runtime | None = kernel.__dict__.get(_ATTR)
    if found is not None:
        found.dispatcher.stop(timeout)
