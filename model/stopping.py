"""Ctrl-C and SIGTERM for the model CLIs: one line and exit 128 + the signal, not torch's
traceback. A build or a training run writes its files whole at the end
(`artifact.output.write_whole`), so a stop at any moment leaves nothing behind."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A signal asked the CLI to stop. A `BaseException`, as `KeyboardInterrupt` is, so
    that library code catching `Exception` lets it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: object) -> None:
    for sig in SIGNALS:
        # A second Ctrl-C while the files are cleaned up must not interrupt that cleanup.
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def run_stoppable(prog: str, body: Callable[[], int]) -> int:
    """``body()``'s exit status; on SIGINT or SIGTERM (the heavy imports included, which
    ``body`` does itself), `prog: stopped; nothing written` and 128 + the signal."""
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in SIGNALS}
    try:
        return body()
    except Stopped as stop:
        print(f"{prog}: stopped; nothing written", file=sys.stderr, flush=True)
        return 128 + stop.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
