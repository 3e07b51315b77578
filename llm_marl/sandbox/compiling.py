"""Parent side: syntax checks and compilation of the program, its tests and their context.

Everything is parsed and compiled here, in the trusted caller, before anything is spawned; the
child only receives marshalled code objects. Tests need no rewriting: they run in an evaluator
process that only ever sees plain data from the program (see `llm_marl.sandbox.evaluator`).
"""

from __future__ import annotations

import functools
import marshal


def syntax_error_text(error: SyntaxError | ValueError, where: str) -> str:
    """``SyntaxError: <msg> (<where> line L, col C)``; a ValueError is a null byte."""
    if isinstance(error, SyntaxError):
        return (
            f"{type(error).__name__}: {error.msg} ({where} line {error.lineno}, col {error.offset})"
        )
    return f"SyntaxError: {error} ({where})"


def compile_program(program: str) -> bytes | str:
    """Marshalled code of the program, or the text of its syntax error."""
    try:
        code = compile(program, "<program>", "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError) as error:
        return syntax_error_text(error, "program")
    return marshal.dumps(code)


@functools.lru_cache(maxsize=8192)
def compile_test(test: str, where: str = "test") -> bytes | str:
    """Marshalled module code of a test (or of the trusted context, ``where="context"``), or
    the text of its syntax error. Compiled with ``optimize=0``: asserts stay even when the
    caller runs under ``python -O``. Cached: training scores many programs against the same
    tests."""
    try:
        code = compile(test, f"<{where}>", "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError) as error:
        return syntax_error_text(error, where)
    return marshal.dumps(code)
