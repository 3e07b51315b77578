"""Parent side: syntax checks and compilation of the program and its tests.

Everything is parsed and compiled here, in the trusted caller, before anything is spawned; the
child only receives marshalled code objects. Each test becomes the body of a function
``_sbx_test(_sbx_truth, _sbx_compare, _sbx_binary, _sbx_unary, _sbx_call)`` whose parameters
are the harness's assert guards: the program cannot rebind a caller's local variables, so the
guards cannot be swapped out by monkeypatching globals or builtins. Inside every ``assert``,
comparisons, arithmetic, ``not``/``and``/``or`` truth tests and calls are rewritten to go
through the guards (see `llm_marl.sandbox.harness`).
"""

from __future__ import annotations

import ast
import functools
import marshal

GUARD_NAMES = ("_sbx_truth", "_sbx_compare", "_sbx_binary", "_sbx_unary", "_sbx_call")
TRUTH, COMPARE, BINARY, UNARY, CALL = GUARD_NAMES


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
        code = compile(program, "<program>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        return syntax_error_text(error, "program")
    return marshal.dumps(code)


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class _Guard(ast.NodeTransformer):
    """Routes the operations of one assert expression through the harness guards."""

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        ops = ast.Constant(tuple(type(op).__name__ for op in node.ops))  # type: ignore[arg-type]
        return _call(COMPARE, ops, node.left, *node.comparators)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        return _call(BINARY, ast.Constant(type(node.op).__name__), node.left, node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return ast.UnaryOp(op=ast.Not(), operand=_call(TRUTH, node.operand))
        return _call(UNARY, ast.Constant(type(node.op).__name__), node.operand)

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        node.test = _call(TRUTH, node.test)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "super":
            return node  # zero-argument super() needs its own call site
        node.args = [node.func, *node.args]
        node.func = ast.Name(id=CALL, ctx=ast.Load())
        return node


def _truth_position(node: ast.expr) -> ast.expr:
    """An expression whose truth decides the assert: and/or keep short-circuiting."""
    if isinstance(node, ast.BoolOp):
        node.values = [_truth_position(value) for value in node.values]
        return node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ast.UnaryOp(op=ast.Not(), operand=_truth_position(node.operand))
    return _call(TRUTH, _Guard().visit(node))


class _Asserts(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        node.test = _truth_position(node.test)
        return node


@functools.lru_cache(maxsize=8192)
def compile_test(test: str) -> bytes | str:
    """Marshalled code of the guarded test function, or the text of the test's syntax error.

    Cached: training scores many programs against the same tests.
    """
    try:
        compile(test, "<test>", "exec", dont_inherit=True)  # errors as the author wrote it
        tree = ast.parse(test, "<test>")
    except (SyntaxError, ValueError) as error:
        return syntax_error_text(error, "test")
    body = _Asserts().visit(tree).body or [ast.Pass()]
    arguments = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=name) for name in GUARD_NAMES],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    function = ast.FunctionDef(
        name="_sbx_test",
        args=arguments,
        body=body,
        decorator_list=[],
        returns=None,
        type_comment=None,
        lineno=1,
        col_offset=0,
    )
    module = ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[]))
    try:
        code = compile(module, "<test>", "exec", dont_inherit=True)
    except SyntaxError as error:  # e.g. `from m import *`, only allowed at module level
        return syntax_error_text(error, "test")
    (function_code,) = [c for c in code.co_consts if getattr(c, "co_name", "") == "_sbx_test"]
    return marshal.dumps(function_code)
