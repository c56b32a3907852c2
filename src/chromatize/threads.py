"""The one torch thread limiter (torch is imported only when a block is entered)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_users = 0
_saved = 1


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread. For the many small tensor operations
    of a re-solve, waking the thread pool after numpy/SciPy work costs more than it saves;
    for a film's two stages running side by side on 2 cores, two stages of one thread
    each beat torch's own threads (docs/video.md). Re-entrant and thread-safe (the setting
    is per process: the last block to leave restores it; other threads' work meanwhile
    runs on one thread too)."""
    import torch

    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                torch.set_num_threads(_saved)
