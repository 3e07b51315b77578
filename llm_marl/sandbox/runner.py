"""Parent side: `run_tests` and `run_many`: spawn a program, feed it, collect its records.

Every wait uses ``poll`` (never ``select``: it cannot watch an fd >= 1024, and a busy caller
has more). Each attempt owns its fds, its uid slot and its temp dir in one `_Held`, released in
a ``finally`` whatever happens; a run the sandbox itself failed is retried once.
"""

from __future__ import annotations

import fcntl
import marshal
import math
import os
import secrets
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from llm_marl.sandbox.arguments import (
    check_context,
    check_jobs,
    check_limits,
    check_program,
    check_tests,
)
from llm_marl.sandbox.capacity import MAX_RUNNING, MAX_SLOTS, SlotsBusy, running_turn, slot_pool
from llm_marl.sandbox.compiling import compile_program, compile_test
from llm_marl.sandbox.records import Records, sandbox_error, scrub, verdict
from llm_marl.sandbox.result import Isolation, SandboxResult
from llm_marl.sandbox.spawner import SpawnError, Zygote, zygote

OUTPUT_LIMIT = 8192
"""Bytes of stdout+stderr kept in `SandboxResult.output`; the rest is read and dropped."""
RECORD_LIMIT = 1 << 20  # bytes of result records kept (at least 2 KiB per test: one record each)
STARTUP_S = 10.0
"""Grace for spawning and isolating one program, on top of the program's own time: at most
`SPAWN_SHARE` of it waiting for the zygote's answer (requests queue up behind each other),
the rest for the program's coordinator to start."""
SPAWN_SHARE = 0.7
QUEUE_S = 120.0
"""Longest wait for a turn to run (`capacity.MAX_RUNNING` programs run at once): on top of
the bound of `run_tests`, which counts from the turn."""
TEST_SLACK_S = 1.0  # per step (load, each test), on top of timeout_s, before the backstop fires
MAX_PAYLOAD = 64 << 20
FILE_BYTES = 16 << 20  # RLIMIT_FSIZE: largest file a program may write
TMP_MB = 64  # size of the private /tmp (also the program's working directory)
OPEN_FILES = 256
PROCESSES = 16  # RLIMIT_NPROC, counted per slot uid (root) or per user namespace
DEFAULT_WORKERS = 32
"""`run_many`'s threads when not given: each runs one program (4 fds here, up to `PROCESSES`
processes of ``memory_mb`` each), so not one per core on a big host."""
F_SETPIPE_SZ = 1031
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT


def isolation() -> Isolation:
    """Which isolation layers are active here (starts the sandbox's zygote if needed)."""
    return zygote().isolation


@dataclass(frozen=True)
class _Job:
    """One checked and compiled run: what every attempt sends."""

    tests: list[bytes | str]
    """Compiled tests (`_prepare` refuses one that does not parse)."""
    payload: dict
    """The coordinator's payload without its nonce."""
    timeout_s: float
    memory_mb: int

    @property
    def steps(self) -> list[int]:
        return [index for index, test in enumerate(self.tests) if isinstance(test, bytes)]


def run_tests(
    program: str,
    tests: Sequence[str],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    *,
    context: str = "",
) -> SandboxResult:
    """Run each test against ``program`` (loaded once, one server process per test).

    ``context`` is trusted code run before each test, in the test's own namespace (e.g. a
    HumanEval prompt's helpers and the `split_check` prefix ``candidate = <entry_point>``):
    its names win over builtins, which win over the program's. ``timeout_s`` bounds the
    program's top-level code and each test's wall time; one attempt is bounded by
    ``STARTUP_S + (runnable tests + 1) * (timeout_s + TEST_SLACK_S)`` from its turn (at
    most ``capacity.MAX_RUNNING`` programs of this process run at once; a turn comes within
    `QUEUE_S`, else the result is a ``sandbox_error``), and a run the sandbox itself failed (status
    ``sandbox_error``: a dead, stopped or busy zygote, no fds left, a coordinator cut short)
    is retried once, on a fresh zygote if needed. ``memory_mb`` is the
    address-space limit of every process of the program. Raises TypeError or ValueError for
    bad arguments (a context or a test that does not parse included: both are trusted code,
    so their bug is the caller's, not the program's), never for anything the program
    does, and never for a fault of the sandbox (that is a ``sandbox_error`` result).
    """
    return _run(_prepare(program, tests, timeout_s, memory_mb, context))


def run_many(
    jobs: Iterable[tuple[str, Sequence[str]] | tuple[str, Sequence[str], str]],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_workers: int | None = None,
) -> list[SandboxResult]:
    """`run_tests` over many ``(program, tests[, context])`` jobs concurrently, in job order.

    Every job is checked before any runs (a bad one raises as in `run_tests`); afterwards a
    job the sandbox fails becomes a ``sandbox_error`` result and the others' verdicts are
    kept. ``max_workers`` defaults to ``min(os.cpu_count(), DEFAULT_WORKERS)``.
    """
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ValueError(f"max_workers must be an int >= 1 or None, got {max_workers!r}")
    timeout_s, memory_mb = check_limits(timeout_s, memory_mb)  # so what _prepare refuses is a job
    prepared = []
    for index, (program, tests, context) in enumerate(check_jobs(jobs)):
        try:
            prepared.append(_prepare(program, tests, timeout_s, memory_mb, context))
        except ValueError as error:
            raise ValueError(f"jobs[{index}]: {error}") from None
    workers = max_workers or min(os.cpu_count() or 1, DEFAULT_WORKERS)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_run_kept, prepared))


def _prepare(
    program: str, tests: Sequence[str], timeout_s: float, memory_mb: int, context: str
) -> _Job | SandboxResult:
    """Check and compile everything in the caller; a program that does not parse is done."""
    program = check_program(program)
    tests = check_tests(tests)
    timeout_s, memory_mb = check_limits(timeout_s, memory_mb)
    context = check_context(context)
    context_code = compile_test(context, "context") if context.strip() else None
    if isinstance(context_code, str):
        raise ValueError(f"the trusted context does not parse: {context_code}")
    compiled = [compile_test(test) for test in tests]
    for index, code in enumerate(compiled):
        if isinstance(code, str):
            raise ValueError(
                f"tests[{index}] does not parse: {code}; tests are trusted code, so a broken "
                "one is a bug of the caller, not a failure of the program: fix or drop it"
            )
    program_code = compile_program(program)
    if isinstance(program_code, str):
        note = "not run: the program does not parse"
        return SandboxResult(
            0, len(tests), "syntax_error", [False] * len(tests), program_code, [note] * len(tests)
        )
    payload = {
        "program": program_code,
        "tests": compiled,
        "context": context_code,
        "timeout_s": timeout_s,
    }
    size = len(marshal.dumps({**payload, "nonce": "0" * 32}))
    if size > MAX_PAYLOAD:
        raise ValueError(f"program and tests are {size} bytes; the limit is {MAX_PAYLOAD}")
    return _Job(compiled, payload, timeout_s, memory_mb)


def _run(job: _Job | SandboxResult) -> SandboxResult:
    if isinstance(job, SandboxResult):
        return job
    result = _admitted(job)
    if result.status == "sandbox_error":  # once: a fault that persists is reported
        result = _admitted(job)
    return result


def _admitted(job: _Job) -> SandboxResult:
    """One attempt once a turn is free (at most ``MAX_RUNNING`` at once, see `capacity`);
    its time starts then. Waiting longer than `QUEUE_S` is a ``sandbox_error``."""
    turn = running_turn()
    if not turn.acquire(timeout=QUEUE_S):
        message = f"the sandbox is too busy: no turn in {QUEUE_S:g} s ({MAX_RUNNING} running)"
        return sandbox_error(message, len(job.tests))
    try:
        return _attempt(job, time.monotonic())
    finally:
        turn.release()


def _run_kept(job: _Job | SandboxResult) -> SandboxResult:
    """`_run`, with anything unexpected as this job's ``sandbox_error`` (the others go on)."""
    try:
        return _run(job)
    except Exception as error:
        total = len(job.tests) if isinstance(job, _Job) else job.total
        return sandbox_error(f"{type(error).__name__}: {error}"[:500], total)


@dataclass
class _Held:
    """What one attempt holds in the caller; `release` gives everything back."""

    fds: set[int] = field(default_factory=set)
    pidfd: int = -1
    uid: int = -1
    workdir: str = ""

    def pipe(self) -> tuple[int, int]:
        read, write = os.pipe()
        self.fds.update((read, write))
        return read, write

    def close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self.fds:
                self.fds.discard(fd)
                os.close(fd)

    def release(self) -> None:
        """Stop the program, close every fd, free the slot once no process of it is left."""
        stopped = True
        try:
            if self.pidfd >= 0:
                stopped = _stop(self.pidfd)
        finally:
            self.close(*self.fds)
            if self.pidfd >= 0:
                os.close(self.pidfd)
                self.pidfd = -1
            if self.uid >= 0 and (stopped or _uids_gone((self.uid, self.uid + MAX_SLOTS))):
                slot_pool().release(self.uid)  # otherwise the slot stays taken: never reused
            if self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)


def _attempt(job: _Job, start: float) -> SandboxResult:
    """One spawn and run of ``job``; every fault of the sandbox is a ``sandbox_error``."""
    held = _Held()
    try:
        spawner = zygote()
        return _supervise(job, spawner, held, start)
    except (SpawnError, SlotsBusy, OSError) as error:
        return sandbox_error(f"{type(error).__name__}: {error}"[:500], len(job.tests))
    finally:
        held.release()


def _supervise(job: _Job, spawner: Zygote, held: _Held, start: float) -> SandboxResult:
    mode = spawner.isolation.mode
    if mode == "root":
        held.uid = spawner.slots.acquire()
    if mode == "none":
        held.workdir = tempfile.mkdtemp(prefix="llm-marl-sandbox-")
    nonce = secrets.token_hex(16)
    payload = marshal.dumps({**job.payload, "nonce": nonce, "own_evaluator_uid": mode == "root"})
    steps = job.steps
    request = {
        "uid": held.uid,
        "evaluator_uid": held.uid + MAX_SLOTS if held.uid >= 0 else -1,
        "workdir": held.workdir or "/",
        "tmp_mb": TMP_MB,
        "memory_bytes": job.memory_mb << 20,
        "file_bytes": FILE_BYTES,
        "open_files": OPEN_FILES,
        "processes": PROCESSES,
        # above every wall deadline, so that a timeout is reported as one
        "cpu_s": int((job.timeout_s + TEST_SLACK_S) * (len(steps) + 1)) + 5,
    }
    payload_r, payload_w = held.pipe()
    result_r, result_w = held.pipe()
    output_r, output_w = held.pipe()
    spawned_by = start + SPAWN_SHARE * STARTUP_S
    held.pidfd = spawner.spawn(request, [payload_r, result_w, output_w], spawned_by)
    held.close(payload_r, result_w, output_w)
    records = Records(len(job.tests))
    timing = _Timing(start, job.timeout_s, steps)
    pipes = (payload_w, result_r, output_r)
    output, timed_out = _exchange(records, nonce, payload, pipes, held, timing)
    return verdict(records, job.tests, output, timed_out, job.timeout_s)


@dataclass
class _Timing:
    """The deadlines of one attempt, from its start."""

    start: float
    timeout_s: float
    steps: list[int]

    @property
    def final(self) -> float:
        return self.start + STARTUP_S + (len(self.steps) + 1) * (self.timeout_s + TEST_SLACK_S)


def _exchange(
    records: Records,
    nonce: str,
    payload: bytes,
    pipes: tuple[int, int, int],
    held: _Held,
    timing: _Timing,
) -> tuple[str, bool]:
    """Feed the payload, read records and output until the run ends or a deadline passes;
    returns the output and whether a deadline ended the run."""
    payload_w, result_r, output_r = pipes
    try:
        fcntl.fcntl(payload_w, F_SETPIPE_SZ, min(max(len(payload), 4096), 1 << 20))
    except OSError:
        pass
    os.set_blocking(payload_w, False)
    poller = select.poll()
    for fd in (result_r, output_r, held.pidfd):
        poller.register(fd, _POLLIN)
    poller.register(payload_w, _POLLOUT)
    raw, output = bytearray(), bytearray()
    record_limit = max(RECORD_LIMIT, 2100 * (records.total + 8))  # D's records: 2 KiB each
    sent, readers, supervisor_alive, progress = 0, {result_r, output_r}, True, 0
    deadline, final = timing.start + STARTUP_S, timing.final
    while readers:
        remaining = min(deadline, final) - time.monotonic()
        if remaining <= 0:
            return scrub(output), supervisor_alive
        for fd, _ in poller.poll(math.ceil(remaining * 1000)):
            if fd == payload_w:
                try:
                    sent += os.write(payload_w, payload[sent : sent + (1 << 20)])
                except BlockingIOError:
                    continue
                except OSError:  # the reader is gone (BrokenPipeError): nothing more to send
                    sent = len(payload)
                if sent == len(payload):
                    poller.unregister(payload_w)
                    held.close(payload_w)  # EOF: the coordinator starts
            elif fd == held.pidfd:  # the run is over: drain what is already buffered
                poller.unregister(fd)
                supervisor_alive = False
                deadline = min(deadline, time.monotonic() + 1.0)
            elif fd in readers:
                data = os.read(fd, 1 << 16)
                if not data:
                    readers.discard(fd)
                    poller.unregister(fd)
                elif fd == output_r:
                    output += data[: max(0, OUTPUT_LIMIT - len(output))]
                elif len(raw) < record_limit:
                    raw += data
                    *lines, rest = raw.split(b"\n")
                    raw = bytearray(rest)
                    for line in lines:
                        records.add(line.decode("utf-8", "replace"), nonce)
        done = records.progress(timing.steps)
        if done > progress and supervisor_alive:  # advanced: give the next step its time
            progress = done
            deadline = time.monotonic() + timing.timeout_s + TEST_SLACK_S
    return scrub(output), False


def _wait_readable(fd: int, wait_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, _POLLIN)
    return bool(poller.poll(math.ceil(wait_s * 1000)))


def _stop(pidfd: int) -> bool:
    """End the supervisor; it kills the program's init process, which takes every process
    of the namespace down before the supervisor exits. Returns whether that is certain (the
    supervisor itself had to be SIGKILLed: its init dies by PR_SET_PDEATHSIG, a bit later)."""
    for sig, wait_s in ((None, 1.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return sig != signal.SIGKILL
        if _wait_readable(pidfd, wait_s):
            return sig != signal.SIGKILL
    return False


def _uids_gone(uids: tuple[int, ...], wait_s: float = 5.0) -> bool:
    """Whether no process of ``uids`` is left on the host (waits up to ``wait_s``)."""
    end = time.monotonic() + wait_s
    while True:
        left = False
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid in uids:
                    left = True
                    break
            except OSError:
                continue
        if not left:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
