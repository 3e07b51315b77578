"""Child side, part 2: load one program, run each test in its own fork, report verdicts.

Trusted code that runs inside the sandbox (stdlib only; imported by the zygote before any
untrusted code exists). Every reference it relies on (``os.fork``, ``type``, ``marshal.loads``,
the comparison operators ...) is captured at import time, so a program that monkeypatches
``os``, ``builtins`` or ``AssertionError`` does not change what the harness calls.

Protocol: records are lines ``<nonce> <kind> [<index>] [<text>]`` written to a private pipe fd
(never stdout/stderr). Kinds: ``ready`` (payload read), ``loaded`` / ``load_error <text>``
(program top level ran), ``pass <i>`` / ``fail <i> <text>`` (written by the test's process
after the test returned or raised), ``ended <i> <how>`` (written by the loader when the test's
process ended another way: ``exit <code>``, ``signal <n>`` or ``timeout``), ``done``.

The assert guards (`truth`, `compare`, `binary`, `unary`, `call`) receive values computed by
program code and only let exact builtin values reach a comparison, an operator, a truth test
or a builtin function: a subclass of a builtin is converted to the exact type with the base
type's own C method (its data, not its overridden dunders); anything else is rejected with a
TypeError. This defeats "AlwaysEqual" objects and forged ``__bool__``/``__sub__``/``__abs__``.
"""

from __future__ import annotations

import builtins
import marshal
import operator
import os
import select
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

# Functions defined below resolve builtins in this snapshot, not in the shared ``builtins``
# module that the program may patch (a function binds its builtins when it is created).
__builtins__ = dict(vars(builtins))  # type: ignore[assignment]

_fork, _exit, _write, _close = os.fork, os._exit, os.write, os.close
_waitpid, _kill, _killpg, _setpgid = os.waitpid, os.kill, os.killpg, os.setpgid
_pidfd_open, _select, _loads = os.pidfd_open, select.select, marshal.loads
_make_function = types.FunctionType
_type, _isinstance, _str, _len, _tuple = type, isinstance, str, len, tuple
_list, _dict, _set, _frozenset, _bool = list, dict, set, frozenset, bool
_mro = type.__dict__["__mro__"].__get__
_flags = type.__dict__["__flags__"].__get__
_name = type.__dict__["__name__"].__get__
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class created by Python code (monkeypatchable)
_FUNCTION = _type(_fork)  # builtin_function_or_method
_CALLABLE_ARGS = (
    types.BuiltinFunctionType,
    types.FunctionType,
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    type,
)
_SIGKILL = 9
LENIENT = frozenset(
    map(
        id,
        (
            sorted,
            list,
            tuple,
            set,
            frozenset,
            dict,
            len,
            iter,
            next,
            enumerate,
            zip,
            map,
            reversed,
            sum,
            min,
            max,
            str,
            repr,
            print,
            isinstance,
            type,
            id,
            hash,
            getattr,
            hasattr,
            callable,
            format,
            range,
        ),
    )
)
_VERDICT_EXIT = 86  # exit status of a test process that reached the end of its test body

_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes, range, type(...), type})
# Builtin bases and the base's own C method that copies a subclass instance's raw data.
_BASES: tuple[tuple[type, Callable[[Any], Any]], ...] = (
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
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtE": operator.le,
    "Gt": operator.gt,
    "GtE": operator.ge,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
}
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mult": operator.mul,
    "Div": operator.truediv,
    "FloorDiv": operator.floordiv,
    "Mod": operator.mod,
    "Pow": operator.pow,
    "LShift": operator.lshift,
    "RShift": operator.rshift,
    "BitOr": operator.or_,
    "BitXor": operator.xor,
    "BitAnd": operator.and_,
    "MatMult": operator.matmul,
}
_UNARY: dict[str, Callable[[Any], Any]] = {
    "USub": operator.neg,
    "UAdd": operator.pos,
    "Invert": operator.invert,
}


class _Untrusted(TypeError):
    """A value of a non-builtin type reached a guarded assert operation."""


def plain(value: Any) -> Any:
    """``value`` as exact builtin values all the way down, or raise TypeError."""
    kind = _type(value)
    if kind in _SCALARS:
        return value
    if kind is _list:
        return [plain(item) for item in value]
    if kind is _tuple:
        return _tuple([plain(item) for item in value])
    if kind is _dict:
        return {plain(key): plain(item) for key, item in _dict.items(value)}
    if kind is _set or kind is _frozenset:
        return kind([plain(item) for item in value])
    bases = _mro(kind)
    for base, copy in _BASES:
        if base in bases:
            return plain(copy(value))
    raise _Untrusted(
        f"an assert used a value of type {_name(kind)!r}; only builtin values "
        "(numbers, strings, bytes, None, lists, tuples, dicts, sets) are compared"
    )


def truth(value: Any) -> bool:
    """Truth value of ``value`` decided on its exact builtin form."""
    return _bool(plain(value))


def compare(ops: tuple[str, ...], *values: Any) -> bool:
    """A (chained) comparison decided on exact builtin forms; ``is`` stays identity."""
    for index, op in enumerate(ops):
        left, right = values[index], values[index + 1]
        if op == "Is" or op == "IsNot":
            result = (left is right) == (op == "Is")
        else:
            result = _bool(_COMPARE[op](plain(left), plain(right)))
        if not result:
            return False
    return True


def binary(op: str, left: Any, right: Any) -> Any:
    """An arithmetic operator applied to exact builtin forms."""
    return _BINARY[op](plain(left), plain(right))


def unary(op: str, operand: Any) -> Any:
    """A unary operator applied to an exact builtin form."""
    return _UNARY[op](plain(operand))


def _checked_items(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        yield plain(item)


def _argument(value: Any, lenient: bool) -> Any:
    """A builtin function's argument as exact builtin values where it matters.

    ``lenient`` builtins (`LENIENT`) only repackage what they get, and their result is checked
    where it is compared, so any argument goes through. The others (``abs``, ``bool``, ``all``,
    ``math.*``, ``operator.*`` ...) turn dunder results into real numbers and bools: they get
    exact builtin values, callables, or iterables whose items are checked one by one.
    """
    try:
        return plain(value)
    except _Untrusted:
        if lenient or _isinstance(value, _CALLABLE_ARGS):
            return value
        kind = _type(value)
        if hasattr(kind, "__iter__") or hasattr(kind, "__next__"):
            return _checked_items(value)  # lazy: iterators may be long or infinite
        raise


def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``function``; a builtin one gets arguments checked by `_argument`."""
    kind = _type(function)
    if kind is _FUNCTION or (kind is _type and not _flags(function) & _HEAPTYPE):
        lenient = id(function) in LENIENT
        args = _tuple([_argument(arg, lenient) for arg in args])
        kwargs = {key: _argument(value, lenient) for key, value in kwargs.items()}
    return function(*args, **kwargs)


GUARDS = (truth, compare, binary, unary, call)  # order = parameters of the test function


def describe(error: BaseException) -> str:
    """First line of an exception with the line where it was raised in the program/test."""
    name = _name(_type(error))
    try:
        lines = _str(error).strip().splitlines()
        message = lines[0][:300] if lines else ""
    except BaseException:
        message = "<unprintable message>"
    where, tb = "", error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in ("<program>", "<test>"):
            where = f" ({filename[1:-1]} line {tb.tb_lineno})"
        tb = tb.tb_next
    return f"{name}: {message}{where}" if message else f"{name}{where}"


def _reporter(nonce: str, fd: int) -> Callable[..., None]:
    def record(*parts: str) -> None:
        text = " ".join((nonce, *parts)).replace("\n", " ").replace("\r", " ")
        _write(fd, (text[:2000] + "\n").encode("utf-8", "replace"))

    return record


def _test_process(index: int, test: Callable[..., None], record: Callable[..., None]) -> None:
    """Body of one test's process: never returns."""
    try:
        _setpgid(0, 0)  # its own group, so the loader can kill what it spawns
        try:
            test(*GUARDS)
            _flush()
            record("pass", _str(index))
        except BaseException as error:
            _flush()
            record("fail", _str(index), describe(error))
    finally:
        _exit(_VERDICT_EXIT)


def _flush() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass


def _await(pid: int, timeout_s: float) -> str:
    """Wait for a test's process at most ``timeout_s``; kill its group; say how it ended.

    Returns ``""`` for a normal exit after a verdict was possible (exit status 0)."""
    pidfd = _pidfd_open(pid)
    try:
        ready, _, _ = _select([pidfd], [], [], timeout_s)
    finally:
        _close(pidfd)
    for kill, target in ((_killpg, pid), (_kill, pid)):
        try:
            kill(target, _SIGKILL)
        except OSError:
            pass
    _, status = _waitpid(pid, 0)
    _reap_orphans()
    if not ready:
        return "timeout"
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    code = os.WEXITSTATUS(status)
    return "" if code == _VERDICT_EXIT else f"exit {code}"


def _reap_orphans() -> None:
    """As pid 1 of its namespace the loader inherits orphans: reap the dead ones."""
    while True:
        try:
            pid, _ = _waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run(payload: dict[str, Any], fd: int) -> None:
    """Load the program, run every test in a fork of the loaded state, report on ``fd``."""
    record = _reporter(payload["nonce"], fd)
    program = _loads(payload["program"])
    tests = [None if blob is None else _loads(blob) for blob in payload["tests"]]
    timeout_s: float = payload["timeout_s"]
    module = _type(sys)("solution")
    namespace = module.__dict__
    namespace["__builtins__"] = builtins
    sys.modules["solution"] = module
    for name in ("harness", "zygote", "llm_marl.sandbox.harness", "llm_marl.sandbox.zygote"):
        sys.modules.pop(name, None)
    sys.argv = ["solution"]
    record("ready")
    try:
        exec(program, namespace)
    except BaseException as error:
        record("load_error", describe(error))
        return
    _flush()
    record("loaded")
    for index, code in enumerate(tests):
        if code is None:
            continue
        test = _make_function(code, namespace)
        pid = _fork()
        if pid == 0:
            _test_process(index, test, record)
        how = _await(pid, timeout_s)
        if how:
            record("ended", _str(index), how)
    record("done")
