"""Parent side: `run_tests` and `run_many`, verdicts from the harness's records."""

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
from llm_marl.sandbox.spawner import zygote

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
PROCESSES = 64  # RLIMIT_NPROC, counted per slot uid (root) or per user namespace
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
F_SETPIPE_SZ = 1031


def isolation() -> Isolation:
    """Which isolation layers are active here (starts the sandbox's zygote if needed)."""
    return zygote().isolation


def run_tests(
    program: str, tests: Sequence[str], timeout_s: float = 5.0, memory_mb: int = 512
) -> SandboxResult:
    """Run ``program`` then each test (in its own process forked from the loaded program).

    ``timeout_s`` bounds the program's top-level code and each test's wall time; the whole run
    is bounded by ``STARTUP_S + (len(tests) + 1) * (timeout_s + TEST_SLACK_S)``: the caller
    gives each step (start-up, loading, each test) its own deadline and stops the run when one
    passes without progress. ``memory_mb``
    is the address-space limit of every process of the program.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    if memory_mb < 64:
        raise ValueError(f"memory_mb must be >= 64 (the interpreter needs it), got {memory_mb}")
    tests = list(tests)
    program_code = compile_program(program)
    if isinstance(program_code, str):
        note = "not run: the program does not parse"
        return SandboxResult(
            0, len(tests), "syntax_error", [False] * len(tests), program_code, [note] * len(tests)
        )
    return _execute(program_code, [compile_test(test) for test in tests], timeout_s, memory_mb)


def run_many(
    jobs: Iterable[tuple[str, Sequence[str]]],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_workers: int | None = None,
) -> list[SandboxResult]:
    """`run_tests` over many (program, tests) pairs concurrently; results in job order."""
    workers = max_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(run_tests, program, tests, timeout_s, memory_mb) for program, tests in jobs
        ]
        return [future.result() for future in futures]


@dataclass
class _Records:
    """What the harness reported with the right nonce."""

    ready: bool = False
    loaded: bool = False
    load_error: str | None = None
    done: bool = False
    verdicts: dict[int, str | None] = field(default_factory=dict)  # None = passed
    ended: dict[int, str] = field(default_factory=dict)

    def add(self, line: str, nonce: str) -> None:
        head, _, rest = line.partition(" ")
        if head != nonce:
            return
        kind, _, rest = rest.partition(" ")
        if kind in ("ready", "loaded", "done"):
            setattr(self, kind, True)
        elif kind == "load_error" and self.load_error is None:
            self.load_error = rest
        elif kind in ("pass", "fail", "ended"):
            index_text, _, text = rest.partition(" ")
            if not index_text.isdigit():
                return
            index = int(index_text)
            if kind == "ended":
                self.ended.setdefault(index, text)
            else:
                self.verdicts.setdefault(index, None if kind == "pass" else text)


def _execute(
    program: bytes, tests: list[bytes | str], timeout_s: float, memory_mb: int
) -> SandboxResult:
    spawner = zygote()
    mode = spawner.isolation.mode
    nonce = secrets.token_hex(16)
    runnable = [test if isinstance(test, bytes) else None for test in tests]
    payload = marshal.dumps(
        {"nonce": nonce, "program": program, "tests": runnable, "timeout_s": float(timeout_s)}
    )
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"program and tests are {len(payload)} bytes; the limit is {MAX_PAYLOAD}")
    uid = spawner.slots.acquire() if mode == "root" else -1
    workdir = tempfile.mkdtemp(prefix="llm-marl-sandbox-") if mode == "none" else "/"
    pipes = [os.pipe() for _ in range(3)]  # payload, result records, output
    (payload_r, payload_w), (result_r, result_w), (output_r, output_w) = pipes
    pidfd = -1
    try:
        request = {
            "uid": uid,
            "workdir": workdir,
            "tmp_mb": TMP_MB,
            "memory_bytes": memory_mb << 20,
            "file_bytes": FILE_BYTES,
            "open_files": OPEN_FILES,
            "processes": PROCESSES,
            # above every wall deadline, so that a timeout is reported as one
            "cpu_s": int((timeout_s + TEST_SLACK_S) * (len(tests) + 1)) + 5,
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
        records, output, timed_out = _collect(nonce, payload, pipes, pidfd, timeout_s)
        _stop(pidfd)
    finally:
        for fd in (result_r, output_r, pidfd):
            if fd >= 0:
                os.close(fd)
        if uid >= 0:
            spawner.slots.release(uid)
        if mode == "none":
            shutil.rmtree(workdir, ignore_errors=True)
    return _verdict(records, tests, output, timed_out, timeout_s)


def _collect(
    nonce: str, payload: bytes, pipes: list[tuple[int, int]], pidfd: int, timeout_s: float
) -> tuple[_Records, str, bool]:
    """Feed the payload, read records and output until the run ends or its backstop fires."""
    (_, payload_w), (result_r, _), (output_r, _) = pipes
    with open(payload_w, "wb", buffering=0) as writer:  # closed once the payload is sent
        return _exchange(nonce, payload, writer, result_r, output_r, pidfd, timeout_s)


def _exchange(
    nonce: str,
    payload: bytes,
    writer: io.FileIO,
    result_r: int,
    output_r: int,
    pidfd: int,
    timeout_s: float,
) -> tuple[_Records, str, bool]:
    payload_w = writer.fileno()
    try:
        fcntl.fcntl(payload_w, F_SETPIPE_SZ, min(max(len(payload), 4096), 1 << 20))
    except OSError:
        pass
    os.set_blocking(payload_w, False)
    records, raw, output = _Records(), bytearray(), bytearray()
    sent, readers, supervisor_alive = 0, {result_r, output_r}, True
    progress_events = 0
    deadline = time.monotonic() + STARTUP_S
    while readers:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return records, _text(output), supervisor_alive
        watch = [*readers, pidfd] if supervisor_alive else list(readers)
        writing = [] if writer.closed else [payload_w]
        readable, writable, _ = select.select(watch, writing, [], remaining)
        if writable:
            try:
                sent += os.write(payload_w, payload[sent : sent + (1 << 20)])
            except BrokenPipeError:
                sent = len(payload)
            if sent == len(payload):
                writer.close()  # EOF: the harness starts
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
        events = records.ready + records.loaded + len(records.ended) + len(records.verdicts)
        if events > progress_events:  # the harness advanced: give the next test its time
            progress_events = events
            deadline = time.monotonic() + timeout_s + TEST_SLACK_S
    return records, _text(output), False


def _stop(pidfd: int) -> None:
    """End the supervisor; it kills the program's init process, which takes every process
    of the namespace down before the supervisor exits."""
    for sig, wait_s in ((None, 1.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return
        if select.select([pidfd], [], [], wait_s)[0]:
            return


def _text(data: bytes | bytearray) -> str:
    return _ADDRESS.sub("0x?", bytes(data).decode("utf-8", "replace"))


def _verdict(
    records: _Records, tests: list[bytes | str], output: str, timed_out: bool, timeout_s: float
) -> SandboxResult:
    total = len(tests)
    errors: list[str | None] = [test if isinstance(test, str) else None for test in tests]
    if not records.ready:
        message = "sandbox error: the program's process did not start"
        detail = output.strip().splitlines()[-1:] if output.strip() else []
        message += f" ({detail[0][:300]})" if detail else ""
        return SandboxResult(
            0, total, "sandbox_error", [False] * total, message, [message] * total, output
        )
    if records.load_error is not None or not records.loaded:
        if records.load_error is not None:
            status, message = "load_error", _text(records.load_error.encode())
        elif timed_out:
            status, message = (
                "timeout",
                f"Timeout: the program's top level ran over {timeout_s:g} s",
            )
        else:
            status, message = "crashed", "Crashed: the program ended its process while loading"
        return SandboxResult(
            0, total, status, [False] * total, message, [f"not run: {message}"] * total, output
        )
    timeouts = crashes = False
    for index, test in enumerate(tests):
        if isinstance(test, str):
            continue
        ended = records.ended.get(index)
        if index in records.verdicts:
            text = records.verdicts[index]
            errors[index] = None if text is None else _text(text.encode())
        elif ended == "timeout" or (ended is None and timed_out):
            errors[index] = f"Timeout: the test ran over {timeout_s:g} s"
            timeouts = True
        else:
            how = f" ({ended.replace('exit', 'exit status')})" if ended else ""
            errors[index] = f"Crashed: the test's process ended without a verdict{how}"
            crashes = True
    per_test = [error is None for error in errors]
    failing = [f"test {i}: {error}" for i, error in enumerate(errors) if error is not None]
    status = "timeout" if timeouts else "crashed" if crashes else "ok"
    return SandboxResult(
        sum(per_test), total, status, per_test, failing[0] if failing else None, errors, output
    )
