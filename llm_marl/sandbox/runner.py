"""Parent side: `run_tests` and `run_many`, verdicts from the coordinator's and the
evaluators' records."""

from __future__ import annotations

import fcntl
import io
import marshal
import os
import re
import secrets
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from llm_marl.sandbox.compiling import compile_program, compile_test
from llm_marl.sandbox.result import Isolation, SandboxResult
from llm_marl.sandbox.spawner import MAX_SLOTS, zygote

OUTPUT_LIMIT = 8192
"""Bytes of stdout+stderr kept in `SandboxResult.output`; the rest is read and dropped."""
RECORD_LIMIT = 1 << 20  # bytes of result records kept (a program could flood the fd)
STARTUP_S = 10.0
"""Grace for spawning and isolating one program, on top of the program's own time."""
TEST_SLACK_S = 1.0  # per step (load, each test), on top of timeout_s, before the backstop fires
MAX_PAYLOAD = 64 << 20
FILE_BYTES = 16 << 20  # RLIMIT_FSIZE: largest file a program may write
TMP_MB = 64  # size of the private /tmp (also the program's working directory)
OPEN_FILES = 256
PROCESSES = 16  # RLIMIT_NPROC, counted per slot uid (root) or per user namespace
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
F_SETPIPE_SZ = 1031


def isolation() -> Isolation:
    """Which isolation layers are active here (starts the sandbox's zygote if needed)."""
    return zygote().isolation


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
    program's top-level code and each test's wall time; the whole run is bounded by
    ``STARTUP_S + (runnable tests + 1) * (timeout_s + TEST_SLACK_S)``. ``memory_mb`` is the
    address-space limit of every process of the program. Raises ValueError for bad arguments
    (a context that does not parse included), never for anything the program does.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    if memory_mb < 64:
        raise ValueError(f"memory_mb must be >= 64 (the interpreter needs it), got {memory_mb}")
    tests = list(tests)
    context_code = compile_test(context, "context") if context.strip() else None
    if isinstance(context_code, str):
        raise ValueError(f"the trusted context does not parse: {context_code}")
    program_code = compile_program(program)
    if isinstance(program_code, str):
        note = "not run: the program does not parse"
        return SandboxResult(
            0, len(tests), "syntax_error", [False] * len(tests), program_code, [note] * len(tests)
        )
    compiled = [compile_test(test) for test in tests]
    return _execute(program_code, compiled, context_code, timeout_s, memory_mb)


def run_many(
    jobs: Iterable[tuple[str, Sequence[str]] | tuple[str, Sequence[str], str]],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_workers: int | None = None,
) -> list[SandboxResult]:
    """`run_tests` over many ``(program, tests[, context])`` jobs concurrently, in job order."""
    workers = max_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(
                run_tests,
                job[0],
                job[1],
                timeout_s,
                memory_mb,
                context=job[2] if len(job) > 2 else "",  # type: ignore[misc]
            )
            for job in jobs
        ]
        return [future.result() for future in futures]


_INDEX = re.compile(r"[0-9]{1,6}")
_BARE = frozenset({"ready", "loaded", "load_timeout", "load_crash", "done"})


@dataclass
class _Records:
    """What the coordinator and the evaluators reported with the right nonce, parsed strictly:
    a malformed or unexpected record is ignored, never raises."""

    total: int
    flags: set[str] = field(default_factory=set)
    load_error: str | None = None
    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (kind, text)

    def add(self, line: str, nonce: str) -> None:
        head, _, rest = line.partition(" ")
        if head != nonce:
            return
        kind, _, rest = rest.partition(" ")
        if kind in _BARE and not rest:
            self.flags.add(kind)
        elif kind == "load_error" and self.load_error is None:
            self.load_error = rest
        elif kind in ("pass", "fail", "ended"):
            index_text, _, text = rest.partition(" ")
            if not _INDEX.fullmatch(index_text) or (kind == "pass") == bool(text):
                return
            index = int(index_text)
            if index < self.total and index not in self.outcomes:
                self.outcomes[index] = (kind, text)


def _execute(
    program: bytes,
    tests: list[bytes | str],
    context: bytes | None,
    timeout_s: float,
    memory_mb: int,
) -> SandboxResult:
    spawner = zygote()
    mode = spawner.isolation.mode
    nonce = secrets.token_hex(16)
    runnable = [test if isinstance(test, bytes) else None for test in tests]
    payload = marshal.dumps(
        {
            "nonce": nonce,
            "program": program,
            "tests": runnable,
            "context": context,
            "timeout_s": float(timeout_s),
        }
    )
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"program and tests are {len(payload)} bytes; the limit is {MAX_PAYLOAD}")
    steps = [index for index, test in enumerate(runnable) if test is not None]
    uid = spawner.slots.acquire() if mode == "root" else -1
    workdir = tempfile.mkdtemp(prefix="llm-marl-sandbox-") if mode == "none" else "/"
    pipes = [os.pipe() for _ in range(3)]  # payload, result records, output
    (payload_r, payload_w), (result_r, result_w), (output_r, output_w) = pipes
    pidfd, stopped = -1, True
    try:
        request = {
            "uid": uid,
            "evaluator_uid": uid + MAX_SLOTS if uid >= 0 else -1,
            "workdir": workdir,
            "tmp_mb": TMP_MB,
            "memory_bytes": memory_mb << 20,
            "file_bytes": FILE_BYTES,
            "open_files": OPEN_FILES,
            "processes": PROCESSES,
            # above every wall deadline, so that a timeout is reported as one
            "cpu_s": int((timeout_s + TEST_SLACK_S) * (len(steps) + 1)) + 5,
        }
        try:
            pidfd = spawner.spawn(request, [payload_r, result_w, output_w])
        except OSError as error:
            message = f"sandbox error: {error}"
            os.close(payload_w)
            return SandboxResult(
                0,
                len(tests),
                "sandbox_error",
                [False] * len(tests),
                message,
                [message] * len(tests),
            )
        finally:
            for fd in (payload_r, result_w, output_w):
                os.close(fd)
        records = _Records(len(tests))
        output, timed_out = _collect(records, nonce, payload, pipes, pidfd, timeout_s, steps)
    finally:
        if pidfd >= 0:
            stopped = _stop(pidfd)
        for fd in (result_r, output_r, pidfd):
            if fd >= 0:
                os.close(fd)
        if uid >= 0 and (stopped or _uids_gone((uid, uid + MAX_SLOTS))):
            spawner.slots.release(uid)  # otherwise the slot stays taken: never reused
        if mode == "none":
            shutil.rmtree(workdir, ignore_errors=True)
    return _verdict(records, tests, output, timed_out, timeout_s)


def _collect(
    records: _Records,
    nonce: str,
    payload: bytes,
    pipes: list[tuple[int, int]],
    pidfd: int,
    timeout_s: float,
    steps: list[int],
) -> tuple[str, bool]:
    """Feed the payload, read records and output until the run ends or a deadline passes."""
    (_, payload_w), (result_r, _), (output_r, _) = pipes
    with open(payload_w, "wb", buffering=0) as writer:  # closed once the payload is sent
        return _exchange(
            records, nonce, payload, writer, result_r, output_r, pidfd, timeout_s, steps
        )


def _progress(records: _Records, steps: list[int]) -> int:
    """Steps done, counting only the expected records in their order."""
    if "ready" not in records.flags:
        return 0
    if "loaded" not in records.flags:
        return 1
    done = 2
    for index in steps:
        if index not in records.outcomes:
            break
        done += 1
    return done


def _exchange(
    records: _Records,
    nonce: str,
    payload: bytes,
    writer: io.FileIO,
    result_r: int,
    output_r: int,
    pidfd: int,
    timeout_s: float,
    steps: list[int],
) -> tuple[str, bool]:
    payload_w = writer.fileno()
    try:
        fcntl.fcntl(payload_w, F_SETPIPE_SZ, min(max(len(payload), 4096), 1 << 20))
    except OSError:
        pass
    os.set_blocking(payload_w, False)
    raw, output = bytearray(), bytearray()
    sent, readers, supervisor_alive, progress = 0, {result_r, output_r}, True, 0
    start = time.monotonic()
    final = start + STARTUP_S + (len(steps) + 1) * (timeout_s + TEST_SLACK_S)
    deadline = start + STARTUP_S
    while readers:
        remaining = min(deadline, final) - time.monotonic()
        if remaining <= 0:
            return _text(output), supervisor_alive
        watch = [*readers, pidfd] if supervisor_alive else list(readers)
        writing = [] if writer.closed else [payload_w]
        readable, writable, _ = select.select(watch, writing, [], remaining)
        if writable:
            try:
                sent += os.write(payload_w, payload[sent : sent + (1 << 20)])
            except BrokenPipeError:
                sent = len(payload)
            if sent == len(payload):
                writer.close()  # EOF: the coordinator starts
        for fd in readable:
            if fd == pidfd:  # the run is over: drain what is already buffered
                supervisor_alive = False
                deadline = min(deadline, time.monotonic() + 1.0)
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                readers.discard(fd)
            elif fd == output_r:
                output += data[: max(0, OUTPUT_LIMIT - len(output))]
            elif len(raw) < RECORD_LIMIT:
                raw += data
                *lines, rest = raw.split(b"\n")
                raw = bytearray(rest)
                for line in lines:
                    records.add(line.decode("utf-8", "replace"), nonce)
        done = _progress(records, steps)
        if done > progress and supervisor_alive:  # advanced: give the next step its time
            progress = done
            deadline = time.monotonic() + timeout_s + TEST_SLACK_S
    return _text(output), False


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
        if select.select([pidfd], [], [], wait_s)[0]:
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


def _text(data: bytes | bytearray) -> str:
    return _ADDRESS.sub("0x?", bytes(data).decode("utf-8", "replace"))


def _failed(status: str, message: str, total: int, output: str) -> SandboxResult:
    return SandboxResult(
        0, total, status, [False] * total, message, [f"not run: {message}"] * total, output
    )


def _verdict(
    records: _Records, tests: list[bytes | str], output: str, timed_out: bool, timeout_s: float
) -> SandboxResult:
    total = len(tests)
    errors: list[str | None] = [test if isinstance(test, str) else None for test in tests]
    flags = records.flags
    if "ready" not in flags:
        message = "sandbox error: the program's process did not start"
        detail = output.strip().splitlines()[-1:] if output.strip() else []
        message += f" ({detail[0][:300]})" if detail else ""
        return SandboxResult(
            0, total, "sandbox_error", [False] * total, message, [message] * total, output
        )
    if records.load_error is not None:
        return _failed("load_error", _text(records.load_error.encode()), total, output)
    if "loaded" not in flags:
        if "load_timeout" in flags or (timed_out and "load_crash" not in flags):
            message = f"Timeout: the program's top level ran over {timeout_s:g} s"
            return _failed("timeout", message, total, output)
        message = "Crashed: the program ended its process while loading"
        return _failed("crashed", message, total, output)
    timeouts = crashes = False
    for index, test in enumerate(tests):
        if isinstance(test, str):
            continue
        kind, text = records.outcomes.get(index, ("", ""))
        if kind == "pass":
            continue
        if kind == "fail":
            errors[index] = _text(text.encode())
        elif text == "timeout" or (not kind and timed_out):
            errors[index] = f"Timeout: the test ran over {timeout_s:g} s"
            timeouts = True
        else:
            how = text or "the test's process ended without a verdict"
            errors[index] = _text(f"Crashed: {how}".encode())
            crashes = True
    per_test = [error is None for error in errors]
    failing = [f"test {i}: {error}" for i, error in enumerate(errors) if error is not None]
    status = "timeout" if timeouts else "crashed" if crashes else "ok"
    return SandboxResult(
        sum(per_test), total, status, per_test, failing[0] if failing else None, errors, output
    )
