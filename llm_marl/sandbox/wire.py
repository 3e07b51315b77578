"""Child side, shared: length-prefixed frames between an evaluator and a program server, and
the plain-data rules for what may cross between them.

A frame is a 4-byte big-endian length then that many bytes of ``marshal`` data, at most
`FRAME_LIMIT` bytes. Only plain data crosses: exact ``int``, ``float``, ``complex``, ``str``,
``bytes``, ``bool``, ``None`` and ``tuple``/``list``/``dict``/``set``/``frozenset`` of them
(`is_plain` checks what was received: ``marshal`` can also produce code objects, refused).
Imported by the zygote before any untrusted code exists (stdlib only).
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

FRAME_LIMIT = 16 << 20
PLAIN_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})
PLAIN_CONTAINERS = frozenset({tuple, list, dict, set, frozenset})
_type, _id, _len = type, id, len
_monotonic, _poll, _POLLIN, _POLLOUT = time.monotonic, select.poll, select.POLLIN, select.POLLOUT


class FrameError(Exception):
    """The peer broke the protocol (EOF, oversized or malformed frame)."""


class FrameTimeout(Exception):
    """The peer did not answer before the deadline."""


def is_plain(value: Any) -> bool:
    """Whether ``value`` is plain data all the way down (cycles and shared parts allowed)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        kind = _type(item)
        if kind in PLAIN_SCALARS:
            continue
        if kind not in PLAIN_CONTAINERS:
            return False
        if _id(item) in seen:
            continue
        seen.add(_id(item))
        if kind is dict:
            stack.extend(dict.keys(item))
            stack.extend(dict.values(item))
        else:
            stack.extend(item)
    return True


def _wait(fd: int, events: int, deadline: float | None) -> None:
    poller = _poll()
    poller.register(fd, events)
    while True:
        remaining = None if deadline is None else max(0.0, deadline - _monotonic())
        if poller.poll(None if remaining is None else remaining * 1000):
            return
        if remaining is not None and remaining <= 0:
            raise FrameTimeout


def pending(fd: int) -> bool:
    """Whether the peer has sent something (or closed) that nobody asked for yet."""
    poller = _poll()
    poller.register(fd, _POLLIN)
    return bool(poller.poll(0))


def send_frame(fd: int, data: bytes, deadline: float | None = None) -> None:
    if _len(data) > FRAME_LIMIT:
        raise FrameError(f"frame of {_len(data)} bytes is over the {FRAME_LIMIT} byte limit")
    view = memoryview(_len(data).to_bytes(4, "big") + data)
    while view:
        _wait(fd, _POLLOUT, deadline)
        try:
            sent = os.write(fd, view)
        except BlockingIOError:
            continue
        except OSError as error:
            raise FrameError(f"the peer is gone ({error.strerror})") from None
        view = view[sent:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        _wait(fd, _POLLIN, deadline)
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except BlockingIOError:
            continue
        except OSError as error:
            raise FrameError(f"the peer is gone ({error.strerror})") from None
        if not chunk:
            raise FrameError("the peer closed the connection")
        chunks.append(chunk)
        left -= _len(chunk)
    return b"".join(chunks)


def recv_frame(fd: int, deadline: float | None = None) -> bytes:
    size = int.from_bytes(_read_exact(fd, 4, deadline), "big")
    if size > FRAME_LIMIT:
        raise FrameError(f"frame of {size} bytes is over the {FRAME_LIMIT} byte limit")
    return _read_exact(fd, size, deadline)


def describe(error: BaseException) -> str:
    """First line of an exception with the line where it was raised in the program/test.

    An exception that carries ``_sbx_text`` (a program's exception re-created by the
    evaluator from the server's text) is described by that text alone.
    """
    text = getattr(error, "_sbx_text", None)
    if isinstance(text, str):
        return str(text)
    name = _type(error).__name__
    try:
        lines = str(error).strip().splitlines()
        message = lines[0][:300] if lines else ""
    except BaseException:
        message = "<unprintable message>"
    where, tb = "", error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in ("<program>", "<test>", "<context>"):
            where = f" ({filename[1:-1]} line {tb.tb_lineno})"
        tb = tb.tb_next
    return f"{name}: {message}{where}" if message else f"{name}{where}"
