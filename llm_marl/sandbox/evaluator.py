"""Child side, trusted: the evaluator ``E`` that runs the tests and decides their verdicts.

``E`` is forked from the coordinator (which never loaded the program), runs as a uid of its
own and never executes program code. The test runs in `TestGlobals`: names come from the
trusted context (executed first), then from E's own builtins (captured before any program
existed), then from the program through its server ``U``: a callable becomes a proxy whose
call sends ``(op, name, args, kwargs)`` and gets back one plain-data result (see `wire`); an
exception of the program comes back as its text and is re-created here from E's own
exception classes. Nothing else of the program can reach the test.

Exactly one answer per request: data that arrives unasked (several forks of ``U`` answering,
a second answer) is a protocol violation and fails the test, and so does a late answer, a
malformed one or a closed connection. Once the connection failed every later call fails too,
so a test's own ``except`` cannot hide it.
"""

from __future__ import annotations

import builtins
import importlib
import marshal
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

try:
    from . import wire
except ImportError:  # imported by the zygote script as a sibling file
    import wire  # type: ignore[no-redef]

BUILTINS = dict(vars(builtins))
"""E's builtins, copied when the zygote imports this module: no program has run yet."""
_EXCEPTIONS = {
    name: value
    for name, value in BUILTINS.items()
    if isinstance(value, type)
    and issubclass(value, Exception)
    # these end an iteration silently (``all(map(f, xs))`` would hold): a RuntimeError instead
    and not issubclass(value, StopIteration | StopAsyncIteration)
}
#: Stdlib modules that run code on import (scripts, demos, test suites, GUIs): never for E.
_UNSAFE_MODULES = frozenset(
    {"__main__", "antigravity", "this", "idlelib", "test", "venv", "ensurepip", "turtledemo",
     "turtle", "tkinter", "pydoc", "webbrowser", "lib2to3", "pdb", "code", "site"}
)  # fmt: skip
_dumps, _loads, _getpid, _exit = marshal.dumps, marshal.loads, os.getpid, os._exit
_urandom = os.urandom
_monotonic = time.monotonic
VERDICT_EXIT = 86  # exit status of an evaluator that wrote every verdict


class Broken(Exception):
    """The program's server timed out, died or broke the protocol."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind  # "timeout", "crash" or "protocol"
        self.text = text


class Client:
    """E's side of the connection to ``U``; every call honours the test's deadline."""

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.broken: Broken | None = None

    def _fail(self, kind: str, text: str) -> Broken:
        self.broken = self.broken or Broken(kind, text)
        return self.broken

    def request(self, op: str, name: str, args: tuple = (), kwargs: dict | None = None) -> tuple:
        if self.broken is not None:
            raise self.broken
        what = f"{name}(...)" if op == "call" else name
        tag = _urandom(8)  # the answer must echo it: a stale or early answer cannot
        try:
            data = _dumps((op, name, args, kwargs or {}, tag))
        except ValueError:
            data = b""
        if not data or not wire.is_plain((args, kwargs or {})):
            kinds = sorted({type(a).__name__ for a in (*args, *(kwargs or {}).values())})
            raise TypeError(f"arguments of {what} are not plain data: {', '.join(kinds)}")
        if wire.pending(self.fd):
            raise self._fail("protocol", f"ProtocolError: unasked data from the program ({what})")
        try:
            wire.send_frame(self.fd, data, self.deadline)
            reply = _loads(wire.recv_frame(self.fd, self.deadline))
        except wire.FrameTimeout:
            raise self._fail("timeout", "timeout") from None
        except wire.FrameError as error:
            raise self._fail(
                "crash", f"the program's process ended during {what}: {error}"
            ) from None
        except (EOFError, ValueError, TypeError):
            raise self._fail("protocol", f"ProtocolError: malformed answer to {what}") from None
        if type(reply) is not tuple or len(reply) < 2 or reply[0] != tag:
            raise self._fail("protocol", f"ProtocolError: not the answer to {what}")
        reply = reply[1:]
        if type(reply[0]) is not str:
            raise self._fail("protocol", f"ProtocolError: malformed answer to {what}")
        if (
            reply[0] in ("ok", "raise", "bad", "module")
            and len(reply) == 2
            and wire.is_plain(reply[1])
        ):
            if reply[0] != "ok" and type(reply[1]) is not str:
                raise self._fail("protocol", f"ProtocolError: malformed answer to {what}")
            return reply
        if reply[0] in ("call", "missing") and len(reply) == 1:
            return reply
        if reply[0] == "ok":  # a code object or another non-plain value
            raise TypeError(f"result of {what} is not plain data")
        raise self._fail("protocol", f"ProtocolError: malformed answer to {what}")

    def finish(self) -> None:
        """After the test body: anything the program sent unasked fails the test."""
        if self.broken is not None:
            raise self.broken
        if wire.pending(self.fd):
            raise self._fail("protocol", "ProtocolError: unasked data from the program")


def _safe_module(name: Any) -> bool:
    """A module E may import for a test: one it has already, or a plain stdlib top level."""
    if type(name) is not str:
        return False
    if name in sys.modules:
        return name.partition(".")[0] not in _UNSAFE_MODULES
    return "." not in name and name in sys.stdlib_module_names and name not in _UNSAFE_MODULES


def _raise_program_error(text: str) -> None:
    name = text.partition(":")[0].partition(" ")[0]
    error = _EXCEPTIONS.get(name, RuntimeError)(text)
    error._sbx_text = text[:2000]  # type: ignore[attr-defined]
    raise error


def proxy(client: Client, name: str) -> Callable[..., Any]:
    """A stand-in for the program's callable ``name``: plain data in, plain data out."""

    def call(*args: Any, **kwargs: Any) -> Any:
        kind, *rest = client.request("call", name, args, kwargs)
        if kind == "ok":
            return rest[0]
        if kind == "raise":
            _raise_program_error(rest[0])
        raise TypeError(f"result of {name}(...) is not plain data: {rest[0]}")

    call.__name__ = call.__qualname__ = name
    return call


class TestGlobals(dict):
    """Globals of a test: trusted names, then E's builtins, then the program's (by proxy)."""

    __test__ = False

    def __init__(self, client: Client) -> None:
        super().__init__(__builtins__=BUILTINS, __name__="__main__")
        self.client = client

    def __missing__(self, name: str) -> Any:
        if name in BUILTINS:
            return BUILTINS[name]
        if type(name) is not str or name.startswith("__"):
            raise KeyError(name)
        kind, *rest = self.client.request("get", name)
        if kind == "missing":
            raise NameError(f"name {name!r} is not defined")
        if kind == "bad":
            raise TypeError(f"{name} is not plain data: {rest[0]}")
        value: Any
        if kind == "module":  # a stdlib module the program imported: E's own copy
            if not _safe_module(rest[0]):
                raise TypeError(f"{name} is not plain data: module {rest[0]!r}")
            value = importlib.import_module(rest[0])
        else:
            value = proxy(self.client, name) if kind == "call" else rest[0]
        self[name] = value
        return value


def evaluate_all(
    tests: list[tuple[int, Any]],
    context: Any,
    control_fd: int,
    timeout_s: float,
    record: Callable[..., None],
) -> None:
    """Body of ``E``: run each test with fresh globals and its own deadline, write its
    verdict, tell ``D`` (``d``); ask ``D`` for a fresh server (``n``) whenever the current
    connection is not sound. Never returns."""
    me = _getpid()
    control = socket.socket(fileno=control_fd)
    channel: int | None = None
    for index, test in tests:
        if channel is None:
            control.send(b"n")
            _, fds, _, _ = socket.recv_fds(control, 16, 1)
            if not fds:
                _exit(0)
            channel = fds[0]
        verdict, sound = _evaluate_one(index, test, context, channel, _monotonic() + timeout_s)
        if _getpid() != me:  # a process the test forked never reports
            _exit(0)
        flush_streams()
        record(*verdict)
        if not sound:
            os.close(channel)
            channel = None
        control.send(b"d")
    _exit(VERDICT_EXIT)


def _evaluate_one(
    index: int, test: Any, context: Any, fd: int, deadline: float
) -> tuple[tuple[str, ...], bool]:
    """Test ``index``'s verdict, and whether the connection to the server is still sound."""
    client = Client(fd, deadline)
    try:
        namespace = TestGlobals(client)
        if context is not None:
            exec(context, namespace)
        exec(test, namespace)
        client.finish()
        verdict: tuple[str, ...] = ("pass", str(index))
    except Broken as broken:
        verdict = _broken(index, broken)
    except BaseException as error:
        verdict = ("fail", str(index), wire.describe(error))
        if client.broken is not None:
            verdict = _broken(index, client.broken)
    return verdict, client.broken is None and not wire.pending(fd)


def flush_streams() -> None:
    """Flush the process's own stdout and stderr, ignoring whatever goes wrong."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass


def _broken(index: int, broken: Broken) -> tuple[str, ...]:
    if broken.kind == "protocol":
        return ("fail", str(index), broken.text)
    return ("ended", str(index), broken.text)
