"""Deferring SIGINT/SIGTERM to a batch boundary so that a checkpointing run can save first."""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Dict, Optional

__all__ = ["InterruptGuard", "signal_name"]

_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class InterruptGuard:
    """Defers SIGINT/SIGTERM to the next batch boundary while a checkpointing run trains.

    The handler only records the signal; the trainer checks :attr:`pending` after every
    batch and at every epoch end, saves a checkpoint there and calls :meth:`deliver`.
    A second signal of a kind that is already pending is delivered at once (press
    Ctrl-C twice to abort without waiting).  Signals the process ignores (``SIG_IGN``)
    stay ignored.  Only the main thread can install handlers; elsewhere the guard is
    inactive.  The previous handlers are restored on exit.

    Args:
        enabled: install the handlers (``False``: a no-op guard).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.pending: Optional[int] = None
        self._saved: Dict[int, Any] = {}      # handlers in place before training
        self._installed = False

    def __enter__(self) -> "InterruptGuard":
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                prev = signal.getsignal(sig)
                if prev is signal.SIG_IGN or prev is None:  # ignored, or set outside Python: leave alone
                    continue
                self._saved[sig] = prev
                signal.signal(sig, self._handler)
            self._installed = bool(self._saved)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._installed:
            for sig, prev in self._saved.items():
                signal.signal(sig, prev)
            self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.pending == signum:  # asked twice: stop now, without waiting for a checkpoint
            self.deliver("received twice; stopping before the next batch boundary (no new checkpoint)")
        self.pending = signum

    def deliver(self, message: str) -> None:
        """Hand the pending signal to the handler that was installed before training.

        Python's default SIGINT handler -> ``KeyboardInterrupt``; the default SIGTERM
        action -> ``SystemExit(128 + SIGTERM)`` (exit status 143, ``finally`` blocks
        run); a custom handler is called, and training goes on (unguarded) if it returns.

        Args:
            message: what to tell the user (where the checkpoint is).
        """
        signum = self.pending
        if signum is None:
            return
        prev = self._saved.get(signum, signal.SIG_DFL)
        self._restore()
        self.pending = None
        text = f"graphkit: {_SIGNAL_NAMES.get(signum, signum)}: {message}"
        if prev is signal.default_int_handler or (prev is signal.SIG_DFL and signum == signal.SIGINT):
            raise KeyboardInterrupt(text)
        if prev is signal.SIG_DFL:
            print(text, file=sys.stderr, flush=True)
            raise SystemExit(128 + int(signum))
        if callable(prev):
            prev(signum, None)




def signal_name(signum: Any) -> str:
    """``"SIGINT"``, ``"SIGTERM"`` or the number as text.

    Args:
        signum: the signal number.
    """
    return _SIGNAL_NAMES.get(signum, str(signum))
