"""Whether a process runs (for leases and lock files left by a process that died)."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when a process `pid` exists on this host (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
