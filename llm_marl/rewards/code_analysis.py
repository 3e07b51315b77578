"""Static checks on LLM-written Python for the coding reward: extraction, definitions, cooperation.

Nothing here runs the code: every check reads the source or its syntax tree (``ast``). Running
tests is the sandbox's job (:mod:`llm_marl.sandbox`).

- :func:`extract_code` takes the code out of a whole LLM response (fenced blocks, else the text).
- :func:`find_function` finds a top-level ``def name(...)`` and whether it returns a value, also
  in code that does not parse as a whole (each top-level block is tried on its own).
- :func:`cooperation_flags` says how an entry-point function uses ``aux``: called at all, only a
  thin wrapper around it, or called with its result thrown away.
- :func:`prompt_context` keeps what a problem statement gives besides the function to write
  (imports, helper functions, constants), the head of every joint program.
- :func:`split_program` splits one program into the ``aux`` part and the rest (single-agent view).
"""

from __future__ import annotations

import ast
import re
import textwrap
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "CooperationFlags",
    "FunctionInfo",
    "SyntaxProblem",
    "cooperation_flags",
    "extract_code",
    "find_function",
    "prompt_context",
    "split_program",
    "syntax_problem",
    "top_level_blocks",
]

# An opening fence with an optional language tag, the block, and its closing fence (if any: an
# answer cut at the token limit often ends inside an open block).
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.M | re.S)
_PYTHON_TAGS = frozenset({"python", "python3", "py", "py3"})


def extract_code(text: str) -> str:
    """The Python code of an LLM response.

    With Markdown fences, the blocks tagged ``python`` (or ``py``) are joined, or, when none is
    tagged so, the untagged blocks; blocks in other languages are dropped, and a block left open
    at the end (a response cut at the token limit) runs to the end of the text. Without fences
    the whole text is the code. The result is dedented and stripped of blank edges.
    """
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text)]
    if blocks:
        chosen = [body for tag, body in blocks if tag in _PYTHON_TAGS]
        chosen = chosen or [body for tag, body in blocks if not tag]
        text = "\n\n".join(body.rstrip() for body in chosen)
    return textwrap.dedent(text).strip("\n").rstrip()


@dataclass(frozen=True)
class SyntaxProblem:
    """Where and why a piece of code does not parse (1-based line and column)."""

    line: int
    column: int
    message: str

    def describe(self) -> str:
        """``"line 3, column 5: invalid syntax"``."""
        return f"line {self.line}, column {self.column}: {self.message}"


# ``warnings.catch_warnings`` swaps process-wide state: one parse at a time keeps it sound.
_QUIET_PARSE = threading.Lock()


def _quiet_parse(code: str) -> ast.Module:
    """``ast.parse`` with compile warnings (``"\\d"`` escapes, ...) silenced.

    Without this, whether such code parses would depend on the caller's warning filters (an
    "error" filter turns the warning into a ``SyntaxError``), and every answer would warn.
    """
    with _QUIET_PARSE, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)


def syntax_problem(code: str) -> SyntaxProblem | None:
    """The first syntax error of ``code``, or ``None`` when it parses."""
    try:
        _quiet_parse(code)
    except SyntaxError as err:
        return SyntaxProblem(err.lineno or 0, err.offset or 0, err.msg)
    except ValueError as err:  # source with NUL bytes
        return SyntaxProblem(0, 0, str(err))
    return None


def _parse(code: str) -> ast.Module | None:
    try:
        return _quiet_parse(code)
    except (SyntaxError, ValueError):
        return None


def top_level_blocks(code: str) -> list[str]:
    """``code`` cut before every line that starts at column 0 (other than blank or comment lines).

    A best-effort split of code that does not parse as a whole: a well-formed function stays in
    one block even when another block is broken.
    """
    blocks: list[list[str]] = [[]]
    for line in code.splitlines():
        starts_block = line[:1] not in ("", " ", "\t", "#", ")", "]", "}")
        if starts_block and any(s.strip() for s in blocks[-1]):
            blocks.append([])
        blocks[-1].append(line)
    return ["\n".join(block).strip("\n") for block in blocks if any(s.strip() for s in block)]


def _statements(code: str) -> Iterator[ast.stmt]:
    """The top-level statements of ``code``, or of its parsable top-level blocks."""
    tree = _parse(code)
    if tree is not None:
        yield from tree.body
        return
    for block in top_level_blocks(code):
        block_tree = _parse(block)
        if block_tree is not None:
            yield from block_tree.body


def _function_def(code: str, name: str) -> ast.FunctionDef | None:
    """The last top-level ``def name`` of ``code`` (the one Python would bind)."""
    found = None
    for statement in _statements(code):
        if isinstance(statement, ast.FunctionDef) and statement.name == name:
            found = statement
    return found


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _own_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """Nodes of ``function``'s body, not descending into nested functions, lambdas, classes."""
    stack: list[ast.AST] = [s for s in function.body if not isinstance(s, _SCOPES)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))


@dataclass(frozen=True)
class FunctionInfo:
    """What the structure term needs to know about one function of an agent's code."""

    defined: bool
    """A top-level ``def <name>(...)`` exists."""
    returns_value: bool
    """Its own body (not a nested function's) has a ``return <expression>``."""


def find_function(code: str, name: str) -> FunctionInfo:
    """Whether ``code`` defines function ``name`` at top level, and whether it returns a value.

    Code that does not parse as a whole is read block by block (see :func:`top_level_blocks`),
    so a well-formed function is found next to a broken line; the syntax term judges the rest.
    """
    function = _function_def(code, name)
    if function is None:
        return FunctionInfo(defined=False, returns_value=False)
    returns = any(
        isinstance(node, ast.Return) and node.value is not None for node in _own_nodes(function)
    )
    return FunctionInfo(defined=True, returns_value=returns)


@dataclass(frozen=True)
class CooperationFlags:
    """How the entry-point function uses the helper function ``aux``."""

    calls_aux: bool = False
    """It calls ``aux(...)`` or passes ``aux`` to a call (``map(aux, xs)``, ``key=aux``)."""
    thin_wrapper: bool = False
    """Its body is only ``return aux(...)``, or ``v = aux(...)`` then ``return v``."""
    ignores_result: bool = False
    """It has a bare statement ``aux(...)`` whose result is thrown away."""


def _is_aux_call(node: ast.AST | None, aux: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == aux


def _is_aux_name(node: ast.AST, aux: str) -> bool:
    return isinstance(node, ast.Name) and node.id == aux


def _body_without_docstring(function: ast.FunctionDef) -> list[ast.stmt]:
    body = list(function.body)
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            body = body[1:]
    return [s for s in body if not isinstance(s, ast.Pass)]


def _is_thin_wrapper(function: ast.FunctionDef, aux: str) -> bool:
    body = _body_without_docstring(function)
    if len(body) == 1:
        return isinstance(body[0], ast.Return) and _is_aux_call(body[0].value, aux)
    if len(body) == 2 and isinstance(body[1], ast.Return):
        first, returned = body[0], body[1].value
        target: ast.expr
        value: ast.expr | None
        if isinstance(first, ast.Assign) and len(first.targets) == 1:
            target, value = first.targets[0], first.value
        elif isinstance(first, ast.AnnAssign):
            target, value = first.target, first.value
        else:
            return False
        return (
            isinstance(target, ast.Name)
            and _is_aux_call(value, aux)
            and isinstance(returned, ast.Name)
            and returned.id == target.id
        )
    return False


def cooperation_flags(code: str, entry_point: str, aux: str = "aux") -> CooperationFlags:
    """How the top-level ``def entry_point`` of ``code`` uses ``aux`` (all false without one).

    Everything inside the entry point counts, nested functions and lambdas included; calls to
    ``aux`` from other top-level functions of ``code`` do not.
    """
    function = _function_def(code, entry_point)
    if function is None:
        return CooperationFlags()
    calls = ignored = False
    for node in ast.walk(function):
        if _is_aux_call(node, aux):
            calls = True
        elif isinstance(node, ast.Call):
            arguments = [*node.args, *(k.value for k in node.keywords)]
            calls = calls or any(_is_aux_name(a, aux) for a in arguments)
        if isinstance(node, ast.Expr) and _is_aux_call(node.value, aux):
            ignored = True
    return CooperationFlags(
        calls_aux=calls,
        thin_wrapper=calls and _is_thin_wrapper(function, aux),
        ignores_result=ignored,
    )


def _line_span(node: ast.stmt) -> tuple[int, int]:
    """0-based first line (decorators included) and end line (exclusive) of a statement."""
    decorators = getattr(node, "decorator_list", None) or [node]
    first = min(node.lineno, *(d.lineno for d in decorators))
    return first - 1, node.end_lineno or node.lineno


def prompt_context(prompt: str, entry_point: str) -> str:
    """Everything a problem statement defines besides ``entry_point``: imports, helpers, constants.

    HumanEval prompts are a signature and docstring, sometimes after imports, a helper the tests
    use (``encode_cyclic``) or a constant. A prompt that does not parse gives its import lines.
    """
    tree = _parse(prompt)
    lines = prompt.splitlines()
    if tree is None:
        imports = (s.strip() for s in lines if re.match(r"\s*(import|from)\s+\w", s))
        return "\n".join(dict.fromkeys(imports))
    kept = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == entry_point:
            continue
        start, end = _line_span(statement)
        kept.append("\n".join(lines[start:end]))
    return "\n\n".join(kept)


def split_program(code: str, aux: str = "aux") -> tuple[str, str]:
    """Split one program into (the ``aux`` function, everything else), in source order.

    Every top-level ``def aux`` goes to the first part; code that does not parse is split at its
    top-level blocks (a block that opens with ``def aux(`` is the aux part).
    """
    tree = _parse(code)
    lines = code.splitlines()
    if tree is None:
        opener = re.compile(rf"def\s+{re.escape(aux)}\s*\(")
        blocks = top_level_blocks(code)
        aux_blocks = [b for b in blocks if opener.match(b)]
        rest = [b for b in blocks if not opener.match(b)]
        return "\n\n".join(aux_blocks), "\n\n".join(rest)
    aux_lines: set[int] = set()
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == aux:
            start, end = _line_span(statement)
            aux_lines.update(range(start, end))
    aux_part = [line for i, line in enumerate(lines) if i in aux_lines]
    rest_part = [line for i, line in enumerate(lines) if i not in aux_lines]
    return "\n".join(aux_part).strip("\n"), "\n".join(rest_part).strip("\n")
