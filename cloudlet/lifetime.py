"""Children that must not outlive the control plane, even when it is SIGKILLed."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """A `preexec_fn`: ask Linux to send `sig` to this child when its parent thread exits.

    Without it a SIGKILLed `cloudlet up` leaves builds (uv) and the router running, holding
    ports and writing into folders the restarted platform rebuilds.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)
