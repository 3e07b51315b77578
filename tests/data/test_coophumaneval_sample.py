"""The bundled CoopHumanEval sample: schema, canonical programs and the helper/main split."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from typing import Any

import pytest

from llm_marl.data import bundled_path, read_jsonl

KEYS = [
    "task_id",
    "prompt",
    "canonical_solution",
    "test",
    "entry_point",
    "helper_hint",
    "canonical_aux",
    "canonical_main",
]
SPLITS = ("train", "test")

# Runs every program given on stdin (a JSON list of [label, code]) in a fresh namespace and
# prints a JSON list of [label, error] for the ones that raise.
RUNNER = """
import json, sys, traceback
failures = []
for label, code in json.loads(sys.stdin.read()):
    try:
        exec(compile(code, label, "exec"), {"__name__": "__main__"})
    except BaseException:
        failures.append([label, traceback.format_exc(limit=3)])
print(json.dumps(failures))
"""


def records(split: str) -> list[dict[str, Any]]:
    """The problems of one split of the bundled sample."""
    return read_jsonl(bundled_path("coophumaneval", split))


def imports_of(prompt: str) -> str:
    """The import lines at the top of a HumanEval-style prompt."""
    lines = []
    for line in prompt.splitlines():
        if line.startswith(("import ", "from ")):
            lines.append(line + "\n")
        elif line.strip():
            break
    return "".join(lines)


def only_function(source: str) -> ast.FunctionDef:
    """The single top-level function definition of source."""
    module = ast.parse(source)
    assert len(module.body) == 1 and isinstance(module.body[0], ast.FunctionDef)
    return module.body[0]


def is_aux_call(node: ast.AST | None) -> bool:
    """True for a call ``aux(...)``."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "aux"


def is_thin_wrapper(func: ast.FunctionDef) -> bool:
    """True for ``return aux(...)`` or ``r = aux(...); return r`` (docstring aside)."""
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) == 1 and isinstance(body[0], ast.Return):
        return is_aux_call(body[0].value)
    if len(body) == 2 and isinstance(body[0], ast.Assign) and isinstance(body[1], ast.Return):
        targets, returned = body[0].targets, body[1].value
        return (
            is_aux_call(body[0].value)
            and len(targets) == 1
            and isinstance(targets[0], ast.Name)
            and isinstance(returned, ast.Name)
            and returned.id == targets[0].id
        )
    return False


def run_programs(programs: list[tuple[str, str]]) -> list[list[str]]:
    """Run the programs in one isolated subprocess; return the [label, error] failures."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", RUNNER],
        input=json.dumps(programs),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    failures: list[list[str]] = json.loads(proc.stdout)
    return failures


def test_bundled_sample_has_24_train_and_8_test_problems() -> None:
    """The bundled sample has 24 train and 8 test problems, numbered 0..31 in order."""
    ids = [r["task_id"] for split in SPLITS for r in records(split)]
    assert len(records("train")) == 24 and len(records("test")) == 8
    assert ids == [f"CoopHumanEval/{k}" for k in range(32)]


@pytest.mark.parametrize("split", SPLITS)
def test_records_have_the_coophumaneval_schema(split: str) -> None:
    """Each record has the keys in order and HumanEval-style prompt, test and aux fields."""
    for r in records(split):
        assert list(r) == KEYS, r["task_id"]
        assert all(isinstance(r[k], str) and r[k] for k in KEYS), r["task_id"]
        assert re.fullmatch(r"CoopHumanEval/\d+", r["task_id"])
        assert r["entry_point"].isidentifier()
        prompt = r["prompt"]
        assert prompt.endswith('"""\n') and ">>> " in prompt
        func = only_function(prompt[len(imports_of(prompt)) :] + "    pass\n")
        assert func.name == r["entry_point"] and ast.get_docstring(func)
        assert func.returns is not None and all(a.annotation for a in func.args.args)
        assert r["canonical_solution"].startswith("    ")
        assert r["helper_hint"].startswith("def aux(") and "\n" not in r["helper_hint"]
        aux = only_function(r["canonical_aux"])
        assert aux.name == "aux" and ast.get_docstring(aux)
        main = only_function(r["canonical_main"])
        assert main.name == r["entry_point"]
        assert ast.dump(main.args) == ast.dump(func.args)
        assert main.returns is not None and ast.dump(main.returns) == ast.dump(func.returns)
        assert r["test"].startswith("\n\nMETADATA = {}\n\n\ndef check(candidate):\n")
        module = ast.parse(r["test"])
        check = next(n for n in module.body if isinstance(n, ast.FunctionDef))
        assert check.name == "check" and 5 <= len(check.body) <= 10, r["task_id"]
        assert all(isinstance(s, ast.Assert) for s in check.body), r["task_id"]


def test_task_ids_are_unique_and_splits_are_disjoint() -> None:
    """No task id or entry point is repeated, within or across the two splits."""
    train, test = records("train"), records("test")
    for key in ("task_id", "entry_point"):
        values = [r[key] for r in train + test]
        assert len(set(values)) == len(values), key
        assert not {r[key] for r in train} & {r[key] for r in test}, key


@pytest.mark.parametrize("split", SPLITS)
def test_canonical_programs_pass_their_tests(split: str) -> None:
    """Both the plain solution and the aux + main solution pass each problem's check."""
    programs = []
    for r in records(split):
        call = f"\ncheck({r['entry_point']})\n"
        solution = r["prompt"] + r["canonical_solution"] + r["test"] + call
        coop = imports_of(r["prompt"]) + r["canonical_aux"] + "\n" + r["canonical_main"]
        programs.append((f"{r['task_id']}:solution", solution))
        programs.append((f"{r['task_id']}:aux+main", coop + r["test"] + call))
    assert run_programs(programs) == []


def test_the_runner_reports_a_failing_program() -> None:
    """A wrong program is reported, so a passing run means the checks really ran."""
    wrong = "def f(x):\n    return x\n\n\ndef check(candidate):\n    assert candidate(1) == 2\n"
    failures = run_programs([("ok", "x = 1\n"), ("bad", wrong + "\ncheck(f)\n")])
    assert [label for label, _ in failures] == ["bad"]


@pytest.mark.parametrize("split", SPLITS)
def test_canonical_main_uses_aux_for_real(split: str) -> None:
    """Every canonical main calls aux, uses each result and is not a thin wrapper."""
    for r in records(split):
        main = only_function(r["canonical_main"])
        calls = [n for n in ast.walk(main) if is_aux_call(n)]
        assert calls, r["task_id"]
        discarded = [n for n in ast.walk(main) if isinstance(n, ast.Expr) and is_aux_call(n.value)]
        assert not discarded, r["task_id"]
        assert not is_thin_wrapper(main), r["task_id"]
        nested = [n for n in ast.walk(main) if isinstance(n, ast.FunctionDef) and n.name == "aux"]
        assert not nested, r["task_id"]


def test_thin_wrapper_detection() -> None:
    """The thin-wrapper check flags the two trivial shapes and accepts real work."""
    assert is_thin_wrapper(only_function("def f(x):\n    return aux(x)\n"))
    two_steps = 'def f(x):\n    """Doc."""\n    r = aux(x)\n    return r\n'
    assert is_thin_wrapper(only_function(two_steps))
    assert not is_thin_wrapper(only_function("def f(xs):\n    return sum(aux(x) for x in xs)\n"))
