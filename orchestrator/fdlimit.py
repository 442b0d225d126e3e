"""A default bound on concurrent calls of tools that hold file descriptors.

A 1,500-item ``shell`` fan-out under ``ulimit -n 1024`` lost 995 items to ``EMFILE``
(security review, finding 12): every running subprocess holds pipes, every HTTP call a
socket. Without a limit of the user's own, the scheduler shares one semaphore between
these tools, sized from the process's file-descriptor limit, so a large fan-out waits
for descriptors instead of failing. Other tools are not slowed: the hot path of a
no-op task takes no extra lock.
"""

from __future__ import annotations

__all__ = ["FDS_PER_CALL", "FD_HEAVY_TOOLS", "RESERVED_FDS", "fd_concurrency_bound"]

#: Built-in tools that hold descriptors while they run (pipes, sockets, database files).
FD_HEAVY_TOOLS = frozenset({"shell", "http", "sql"})
#: Descriptors one call may hold at once: a subprocess has three pipes and a pidfd.
FDS_PER_CALL = 4
#: Kept for everything else the process has open (journal, broker link, logs, imports).
RESERVED_FDS = 64


def fd_concurrency_bound() -> int | None:
    """Most concurrent fd-heavy calls the soft ``RLIMIT_NOFILE`` allows; ``None`` if unlimited."""
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE to respect
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= 1 << 20:
        return None
    return max(4, (soft - RESERVED_FDS) // FDS_PER_CALL)
