"""Split a HumanEval-style ``check(candidate)`` function into independent tests."""

from __future__ import annotations

import ast
import textwrap


def _contains_assert(node: ast.AST) -> bool:
    return any(isinstance(child, ast.Assert) for child in ast.walk(node))


def _segment(lines: list[str], node: ast.stmt) -> str:
    """The statement's own source lines (dedented), or its unparsed form when it shares a line."""
    first, last = lines[node.lineno - 1], lines[(node.end_lineno or node.lineno) - 1]
    alone = not first[: node.col_offset].strip()
    tail = last[node.end_col_offset :].strip() if node.end_col_offset is not None else ""
    if alone and (not tail or tail.startswith("#")):
        text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        return textwrap.dedent(text).rstrip()
    return ast.unparse(node)


def split_check(
    test_code: str, entry_point: str, check_name: str = "check"
) -> tuple[str, list[str]]:
    """``(prefix, tests)`` from test code that defines ``check(candidate)``.

    ``prefix`` holds the module-level statements of ``test_code`` other than ``check`` (e.g.
    ``METADATA``, imports, helpers) and binds the check's parameter to ``entry_point``; append
    it to the program. Each top-level statement of ``check``'s body that contains an
    ``assert`` (a plain assert, or a compound statement such as a ``for`` loop) is one test;
    the other statements (setup such as ``import random`` or ``x = ...``) are repeated, in
    order, at the start of every later test, because each test runs on its own.
    """
    tree = ast.parse(test_code)
    lines = test_code.splitlines()
    checks = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == check_name
    ]
    if len(checks) != 1:
        raise ValueError(
            f"expected one `def {check_name}(...)` in the test code, found {len(checks)}"
        )
    (check,) = checks
    if len(check.args.args) != 1:
        raise ValueError(
            f"`{check_name}` must take one parameter, got {[a.arg for a in check.args.args]}"
        )
    others = [_segment(lines, node) for node in tree.body if node is not check]
    prefix = "\n".join([*others, f"{check.args.args[0].arg} = {entry_point}"]) + "\n"
    setup: list[str] = []
    tests: list[str] = []
    for statement in check.body:
        docstring = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        if docstring:
            continue
        text = _segment(lines, statement)
        if _contains_assert(statement):
            tests.append("\n".join([*setup, text]))
        else:
            setup.append(text)
    return prefix, tests
