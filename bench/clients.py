"""Concurrent clients for the benchmarks: one thread each, timed together; and the server
they send to."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

Share = TypeVar("Share")


def at_once(shares: Sequence[Share], client: Callable[[Share, Callable[[], None]], None]) -> float:
    """Runs `client(share, ready)` for each share in a thread of its own, each calling
    `ready()` once set up (connected); returns the seconds from all ready to all done. The
    first client's exception is raised again here."""
    barrier = threading.Barrier(len(shares) + 1)
    errors: list[BaseException] = []

    def run(share: Share) -> None:
        try:
            client(share, barrier.wait)
        except BaseException as error:  # raised below, in the caller's thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    # a client that fails before it is ready breaks the barrier: its error is raised below
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(dsn: str, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """`pg-monitoring serve` with `options` on a free port, once it accepts connections."""
    port = free_port()
    command = [sys.executable, "-m", "pg_monitoring", "serve", "--dsn", dsn, "--port", str(port)]
    process = subprocess.Popen([*command, *options], stdout=subprocess.DEVNULL)  # noqa: S603
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}"


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Returns once `process` accepts connections on `port` (20 s at most)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.05)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postmaster_of(backend_pid: int) -> int:
    """The postmaster's pid, from one of its backends' (SELECT pg_backend_pid())."""
    with open(f"/proc/{backend_pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[1])


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds used by one PostgreSQL server's processes that run now: the postmaster
    and its children (backends, walwriter...; those that have exited are not counted)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                pid = int(entry.name)
                if pid == postmaster or postmaster_of(pid) == postmaster:
                    total += process_cpu(pid)
    return total


def own_cpu() -> float:
    """CPU seconds this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system
