"""Start `world_size` worker processes of one batch on this machine (gloo, MASTER_ADDR=127.0.0.1, a free
port), wait for them with a hard deadline, and never leave one behind: each worker is the leader of its
own process group (start_new_session), and every group still alive when the batch ends -- done, failed,
timed out, or interrupted -- is killed (SIGKILL) and reaped.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

WORKER = "optconform.adapters.torch_distributed.worker"


class LaunchError(RuntimeError):
    """The batch did not finish: a worker exited non-zero or the deadline passed (message: which)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank: int, world_size: int, port: int) -> dict[str, str]:
    return {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
            "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "OMP_NUM_THREADS": "1"}


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in procs:
        p.wait()


def _log_tail(path: Path, chars: int = 1500) -> str:
    return path.read_text("utf-8", errors="replace")[-chars:] if path.exists() else ""


def launch(job_dir: Path, world_size: int, timeout_s: float) -> None:
    """Run the batch in `job_dir` on `world_size` ranks; raises LaunchError naming the rank that failed
    (with the end of its log) or the deadline."""
    port, procs = free_port(), []
    deadline = time.monotonic() + timeout_s
    try:
        for rank in range(world_size):
            log = open(job_dir / f"rank{rank}.log", "w", encoding="utf-8")
            with log:
                # -P and cwd=job_dir: the installed package, never a source checkout in the caller's cwd
                procs.append(subprocess.Popen([sys.executable, "-P", "-m", WORKER, str(job_dir)], cwd=job_dir,
                                              env=_env(rank, world_size, port), stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        while any(p.poll() is None for p in procs):
            failed = [r for r, p in enumerate(procs) if p.poll() not in (None, 0)]
            if failed:
                raise LaunchError(f"rank {failed[0]} exited with status {procs[failed[0]].returncode}: "
                                  f"{_log_tail(job_dir / f'rank{failed[0]}.log')}")
            if time.monotonic() > deadline:
                raise LaunchError(f"the {world_size} workers did not finish within {timeout_s:.0f} s (killed)")
            time.sleep(0.02)
        failed = [r for r, p in enumerate(procs) if p.returncode != 0]
        if failed:
            raise LaunchError(f"rank {failed[0]} exited with status {procs[failed[0]].returncode}: "
                              f"{_log_tail(job_dir / f'rank{failed[0]}.log')}")
    finally:
        _kill(procs)
