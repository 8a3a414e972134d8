"""The conformance matrix of one framework spread over worker processes (`optconform run --workers N`).

Frameworks are not thread-safe to share, so each worker is its own process: ``python -m
optconform.workers FRAMEWORK`` loads the adapter once, then reads jobs from stdin, one JSON line
``{"case": id, "device": d, "dtype": t, "trajectories": directory or null}`` each, and answers each with one JSON line, the row
`optconform.runner.run_case` made (``CaseResult.to_json``). Nothing is pickled: jobs and rows are JSON
text. Anything the framework prints goes to stderr (fd 1 is redirected there; the rows use a
duplicate of the original stdout), so a chatty import cannot corrupt the channel.

The parent hands the next job to whichever worker answers first (the cases' costs differ by 100x: a
static split would leave one core idle), and returns the rows in job order. Each row is computed by
the same `runner.run_case` in a process of the same environment: the findings are the ones a
single-process run makes (tools/same-results proves it on each lane; README "Speed").
A worker that dies makes the job it held an error row (its exit status named) and is restarted.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from typing import Callable, Iterable, Sequence

#: (case id, device, dtype): one row of the matrix
Job = tuple[str, str, str]


def run_jobs(framework: str, jobs: Sequence[Job], workers: int,
             progress: Callable[[int, int, str], None] | None = None, trajectories: str | None = None) -> list[dict]:
    """The rows (``CaseResult.to_json()`` dicts) of `jobs`, in order, computed by `workers` processes
    (`trajectories`: the directory each worker keeps its native runs in, `runner.run_case`)."""
    pending: queue.Queue = queue.Queue()
    for index, job in enumerate(jobs):
        pending.put((index, job))
    rows: list[dict | None] = [None] * len(jobs)
    done = _Counter(len(jobs), progress)
    threads = [threading.Thread(target=_serve, args=(framework, pending, rows, done, trajectories), daemon=True)
               for _ in range(max(1, min(workers, len(jobs))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [row for row in rows if row is not None]


class _Counter:
    """Rows finished so far, reported to the progress callback (from the feeding threads)."""

    def __init__(self, total: int, progress) -> None:
        self.total, self.count, self.progress, self.lock = total, 0, progress, threading.Lock()

    def finished(self, job: Job) -> None:
        with self.lock:
            self.count += 1
            if self.progress:
                self.progress(self.count, self.total, " ".join(job) if self.count < self.total else "done")


def _serve(framework: str, pending: queue.Queue, rows: list, done: _Counter, trajectories: str | None) -> None:
    """Feed jobs to one worker process until none are left; restart it when it dies."""
    proc = None
    try:
        while True:
            try:
                index, job = pending.get_nowait()
            except queue.Empty:
                return
            if proc is None:
                proc = _start(framework)
            rows[index] = _ask(proc, framework, job, trajectories)
            if proc.poll() is not None:
                proc = None
            done.finished(job)
    finally:
        if proc is not None:
            proc.stdin.close()
            proc.wait()


def _start(framework: str) -> subprocess.Popen:
    """A worker in this interpreter: -P, so that the working directory (a source checkout, whose top-level
    folders the installed package maps elsewhere) does not shadow the installed optconform."""
    return subprocess.Popen([sys.executable, "-P", "-m", "optconform.workers", framework], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)


def _ask(proc: subprocess.Popen, framework: str, job: Job, trajectories: str | None) -> dict:
    """One job's row from the worker; an error row when the worker died on it."""
    case, device, dtype = job
    try:
        proc.stdin.write(json.dumps({"case": case, "device": device, "dtype": dtype,
                                     "trajectories": trajectories}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
    except (BrokenPipeError, OSError):
        line = ""
    if line:
        return json.loads(line)
    proc.kill()
    status = proc.wait()
    from optconform.runner import CaseResult
    return CaseResult(framework=framework, framework_version="", case=case, name="", variant="", native="",
                      device=device, device_name="", dtype=dtype, claimed_rule="", verdict="error",
                      error=f"the worker process died on this case (exit status {status})").to_json()


def serve(framework: str, lines: Iterable[str], out) -> None:
    """The worker's loop: one row (JSON line on `out`) per job line."""
    from optconform import registry, runner
    adapter = registry.load_adapter(framework)
    adapter.load()
    version = adapter.version()
    cases = {case.id: case for case in adapter.cases()}
    for line in lines:
        job = json.loads(line)
        row = runner.run_case(adapter, cases[job["case"]], job["device"], job["dtype"], version,
                              trajectories=job.get("trajectories"))
        out.write(json.dumps(row.to_json()) + "\n")
        out.flush()


def main(argv: list[str]) -> int:
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)                       # whatever the framework prints goes to stderr, not the rows
    sys.stdout = sys.stderr
    serve(argv[0], sys.stdin, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
