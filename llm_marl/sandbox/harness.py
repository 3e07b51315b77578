"""Child side, part 2: the coordinator ``D``, the program's loader ``L`` and its servers ``U``.

``D`` (pid 1 of the program's namespaces, trusted, never runs program code) forks ``L``, which
drops to the program's uid, loads the program once and reports ``loaded`` or its error on a
control socket. Then ``D`` forks one evaluator ``E`` (`evaluator`, as the evaluator uid) that
runs the tests in turn. Whenever ``E`` needs a connection to the program it asks ``D``, which
makes a socketpair and hands one end to ``L`` (which kills the previous server and forks ``U``,
a server of the loaded program) and the other to ``E``. ``D`` gives each test its time between
two verdicts of ``E``; a stuck or crashed ``E`` is killed, its test recorded as ``ended`` and a
new ``E`` takes the remaining tests. ``U`` never sees the nonce, the record fd or ``E``'s
memory; it can only answer requests, one frame per request.

Records are lines ``<nonce> <kind> [<index>] [<text>]`` on a private pipe, written by ``D`` and
the evaluators only: ``ready``, ``loaded`` / ``load_error <text>`` / ``load_timeout`` /
``load_crash``, ``pass <i>`` / ``fail <i> <text>`` (by ``E``), ``ended <i> <how>`` (a test
that ended without a verdict: ``timeout`` or a crash description), ``done``, or ``fault
<text>`` when ``D`` itself cannot go on (a fork that fails for a reason the program cannot
cause): the run is the sandbox's failure, not the program's.

Only the process that started a step reports it: a fork of the program (in ``L`` or ``U``) that
returns from the top level or from a call exits silently, so that parent and child never race
to answer and the verdicts of a forking program are deterministic.
"""

from __future__ import annotations

import builtins
import gc
import marshal
import os
import select
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

try:
    from . import evaluator, wire
except ImportError:  # imported by the zygote script as a sibling file
    import evaluator  # type: ignore[no-redef]
    import wire  # type: ignore[no-redef]

RECORD_FD, CONTROL_FD = 3, 4  # fds of an evaluator: its record pipe and its socket to D
GRACE_S = 0.5  # after a test's own deadline, before D kills its evaluator
_SIGKILL = 9
_monotonic = time.monotonic
Become = Callable[[str], None]  # drop to "program" or "evaluator" privileges and limits


def _reporter(nonce: str, fd: int) -> Callable[..., None]:
    def record(*parts: str) -> None:
        text = " ".join((nonce, *parts)).replace("\n", " ").replace("\r", " ")
        os.write(fd, (text[:2000] + "\n").encode("utf-8", "replace"))

    return record


# ---------------------------------------------------------------- untrusted side: L and U


def _load(program: Any, control: socket.socket) -> None:
    """``L``: run the program's top level, report, then fork a server per connection asked."""
    module = type(sys)("solution")
    namespace = module.__dict__
    namespace["__builtins__"] = builtins
    sys.modules["solution"] = module
    sys.argv = ["solution"]
    me = os.getpid()
    try:
        exec(program, namespace)
    except BaseException as error:
        if os.getpid() != me:  # a fork of the program: only the loader reports
            os._exit(0)
        evaluator.flush_streams()
        control.send(b"error " + wire.describe(error)[:2000].encode("utf-8", "replace"))
        return
    if os.getpid() != me:
        os._exit(0)
    evaluator.flush_streams()
    gc.freeze()
    control.send(b"loaded")
    previous = 0
    while True:
        message, fds, _, _ = socket.recv_fds(control, 16, 1)
        if previous:  # the last test is over: its server and what it spawned go
            for kill in (os.killpg, os.kill):
                try:
                    kill(previous, _SIGKILL)
                except OSError:
                    pass
        _reap()
        if not message:
            return
        for fd in fds[1:]:
            os.close(fd)
        if not fds:
            continue
        previous = os.fork()
        if previous == 0:
            control.close()
            os.setpgid(0, 0)
            _serve(fds[0], namespace)
        os.close(fds[0])


def _reap() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _serve(fd: int, namespace: dict[str, Any]) -> None:
    """``U``: answer the evaluator's requests until it hangs up (only ``U`` answers: a fork
    the program made during a call exits when the call returns)."""
    me = os.getpid()
    try:
        while True:
            op, name, args, kwargs, tag = marshal.loads(wire.recv_frame(fd))
            reply = (tag, *_answer(op, name, args, kwargs, namespace))
            if os.getpid() != me:
                os._exit(0)
            evaluator.flush_streams()
            try:
                data = marshal.dumps(reply)
            except (ValueError, TypeError, RecursionError):
                data = b""
            if not data or len(data) > wire.FRAME_LIMIT:
                kind = "too large" if data else f"not plain data: {type(reply[-1]).__name__}"
                failure = ("raise", f"TypeError: result of {name}(...) is {kind}")
                data = marshal.dumps((tag, *failure))
            wire.send_frame(fd, data)
    finally:
        os._exit(0)


def _answer(op: str, name: str, args: tuple, kwargs: dict, namespace: dict[str, Any]) -> tuple:
    if name not in namespace:
        if op == "get":
            return ("missing",)
        return ("raise", f"NameError: name {name!r} is not defined")
    value = namespace[name]
    if op == "get" and type(value) is type(sys) and type(value.__name__) is str:
        return ("module", value.__name__)
    if op == "get" and callable(value):
        return ("call",)
    if op == "call":
        try:
            value = value(*args, **kwargs)
        except BaseException as error:
            return ("raise", wire.describe(error))
    try:
        return ("ok", plain(value))
    except TypeError as error:
        if op == "get":
            return ("bad", str(error))
        return ("raise", f"TypeError: result of {name}(...) is not plain data: {error}")


_BASES: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (bool, bool.__bool__),
    (int, int.__int__),
    (float, float.__float__),
    (complex, complex.__complex__),
    (str, str.__str__),
    (bytes, bytes.__bytes__),
    (list, list.copy),
    (tuple, lambda v: tuple.__getitem__(v, slice(None))),
    (dict, dict.copy),
    (set, set.copy),
    (frozenset, frozenset.copy),
)


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data: subclasses of builtins by their data (a Counter is a dict);
    raises TypeError naming the first other type. A courtesy for honest programs: the
    evaluator checks again what it receives."""
    kind = type(value)
    if kind in wire.PLAIN_SCALARS:
        return value
    if depth > 200:
        raise TypeError("nested too deeply")
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return kind(plain(item, depth + 1) for item in value)
    if kind is dict:
        return {plain(k, depth + 1): plain(v, depth + 1) for k, v in dict.items(value)}
    for base, copy in _BASES:
        if isinstance(value, base):
            return plain(copy(value), depth + 1)
    raise TypeError(kind.__name__)


# ---------------------------------------------------------------- trusted side: D


def coordinate(payload: dict[str, Any], become: Become) -> None:
    """``D``: load the program in ``L``, then run the tests in ``E`` against ``U``; anything
    that stops ``D`` itself is recorded as a ``fault`` (the sandbox's, not the program's)."""
    record = _reporter(payload["nonce"], RECORD_FD)
    try:
        _coordinate(payload, become, record)
    except BaseException as error:
        record("fault", f"{type(error).__name__}: {error}")


def _coordinate(payload: dict[str, Any], become: Become, record: Callable[..., None]) -> None:
    timeout_s: float = payload["timeout_s"]
    tests = [None if blob is None else marshal.loads(blob) for blob in payload["tests"]]
    context = marshal.loads(payload["context"]) if payload["context"] else None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    loader = os.fork()  # no program code has run yet: a failure is the sandbox's (a fault)
    if loader == 0:
        try:
            ours.close()
            os.dup2(theirs.fileno(), RECORD_FD)  # the record pipe's copy is gone
            theirs.close()
            os.closerange(RECORD_FD + 1, 1 << 16)
            become("program")
            _load(marshal.loads(payload["program"]), socket.socket(fileno=RECORD_FD))
        finally:
            os._exit(0)
    theirs.close()
    record("ready")
    report = _receive(ours, _monotonic() + timeout_s)
    if report != b"loaded":
        if report is None:
            record("load_timeout")
        elif report.startswith(b"error "):
            record("load_error", report[6:].decode("utf-8", "replace"))
        else:
            record("load_crash")
        return
    record("loaded")
    ours.setblocking(False)
    pending = [(index, test) for index, test in enumerate(tests) if test is not None]
    while pending:  # one evaluator runs the tests in turn; a new one after a stuck test
        try:
            done, how = _evaluate(pending, context, ours, timeout_s, record, become)
        except OSError as error:  # no evaluator: fork (or socketpair) failed
            if payload.get("own_evaluator_uid"):  # the program cannot use up E's processes
                raise
            done, how = 0, f"the test's process could not start ({error})"
        if done < len(pending):
            record("ended", str(pending[done][0]), how)
            done += 1
        pending = pending[done:]
    record("done")


def _new_server(control: socket.socket) -> socket.socket:
    """A connection to a fresh server ``U`` of the loaded program, forked by ``L`` (which
    kills the previous server)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        socket.send_fds(control, [b"t"], [theirs.fileno()])
    except OSError:  # the loader is gone or stuck: the evaluator finds a closed peer
        pass
    theirs.close()
    return ours


def _readable(sock: socket.socket, deadline: float) -> bool:
    """Whether ``sock`` has data (or was closed) before ``deadline`` (poll: any fd number)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    while True:
        remaining = deadline - _monotonic()
        if poller.poll(max(0, int(remaining * 1000) + 1)):
            return True
        if remaining <= 0:
            return False


def _receive(sock: socket.socket, deadline: float) -> bytes | None:
    """One message of ``L`` before ``deadline``: None on timeout, b"" if it is gone."""
    if not _readable(sock, deadline):
        return None
    try:
        return sock.recv(4096)
    except OSError:
        return b""


def _evaluate(
    tests: list[tuple[int, Any]],
    context: Any,
    loader: socket.socket,
    timeout_s: float,
    record: Callable[..., None],
    become: Become,
) -> tuple[int, str]:
    """Run ``tests`` in one evaluator ``E``; returns how many got a verdict, and how the
    next one ended when ``E`` stopped early (timeout or crash).

    ``E`` asks for a connection to a fresh server (``n``) whenever it needs one and says
    ``d`` after each verdict; each test gets ``timeout_s`` (plus a grace) between two ``d``.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            loader.close()
            ours.close()
            os.dup2(theirs.fileno(), CONTROL_FD)
            theirs.close()
            os.closerange(CONTROL_FD + 1, 1 << 16)
            os.setpgid(0, 0)
            become("evaluator")
            evaluator.evaluate_all(tests, context, CONTROL_FD, timeout_s, record)
        finally:
            os._exit(0)
    theirs.close()
    done, how = 0, ""
    deadline = _monotonic() + timeout_s + GRACE_S
    while done < len(tests):
        if not _readable(ours, deadline):
            how = "timeout"
            break
        try:
            message = ours.recv(16)
        except OSError:
            message = b""
        if message == b"d":
            done += 1
            deadline = _monotonic() + timeout_s + GRACE_S
        elif message == b"n":
            server = _new_server(loader)
            try:
                socket.send_fds(ours, [b"c"], [server.fileno()])
            except OSError:
                pass
            server.close()
        else:  # gone (or nonsense): it crashed
            how = "crash"
            break
    ours.close()
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, _SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    _reap()  # as pid 1, D inherits orphans: reap the dead ones
    if how == "crash":
        ended = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else (f"exit status {os.WEXITSTATUS(status)}")
        )
        how = f"the test's process ended without a verdict ({ended})"
    return done, how
