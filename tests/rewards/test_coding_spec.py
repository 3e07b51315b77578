"""The coding reward v0 (score_coding) against its specification, with hand-worked values.

Written from ALGORITHMS.md ("Coding") and the module docstring of ``llm_marl.rewards.coding``
only. Every case scores a helper answer and a main answer on one small problem:

- entry point ``add_twice(x: int) -> int``, which must return ``2 * x + 1``;
- four asserts (x = 0, 1, 2, -3), so the tests term is visibly a fraction: a main that is wrong
  only for negative ``x`` passes 3 of 4 (0.75), one right only for positive ``x`` passes 2 of 4.

Points (CODING_V0): aux structure 0.4, main structure 0.6 (missing or non-returning entry
point stops), syntax 0.5 (else stop), tests up to 1.0, cooperation +0.5 call, +1.0 not a thin
wrapper, -0.5 ignored result; cooperation only with at least one passing assert and the helper's
``aux`` present. The tests run real code in the sandbox with a short per-assert time limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llm_marl.rewards.coding import CODING_V0, CodingProblem, score_coding

TIMEOUT_S = 1.0

PROBLEM = CodingProblem(
    entry_point="add_twice",
    tests=(
        "assert add_twice(0) == 1",
        "assert add_twice(1) == 3",
        "assert add_twice(2) == 5",
        "assert add_twice(-3) == -5",
    ),
)

# Helper answers.
AUX_DOUBLE = "def aux(x):\n    return 2 * x\n"
AUX_FULL = "def aux(x):\n    return 2 * x + 1\n"
AUX_ZERO = "def aux(x):\n    return 0\n"
AUX_NO_RETURN = "def aux(x):\n    print(2 * x)\n"
AUX_OTHER_NAME = "def helper(x):\n    return 2 * x\n"
AUX_BROKEN_DEF = "def aux(x)\n    return 2 * x\n"
AUX_BROKEN_TAIL = "def aux(x):\n    return 2 * x\n\n\nx = = 1\n"
AUX_LOOPS = "def aux(x):\n    while True:\n        pass\n    return x\n"
AUX_LOOPS_NEGATIVE = "def aux(x):\n    while x < 0:\n        pass\n    return 2 * x\n"

# Main answers.
MAIN_COOP = "def add_twice(x: int) -> int:\n    y = aux(x)\n    return y + 1\n"
MAIN_COOP_EXPR = "def add_twice(x: int) -> int:\n    return aux(x) + 1\n"
MAIN_ALONE = "def add_twice(x: int) -> int:\n    return 2 * x + 1\n"
MAIN_THIN = "def add_twice(x: int) -> int:\n    return aux(x)\n"
MAIN_THIN_DOC = 'def add_twice(x: int) -> int:\n    """Twice plus one."""\n    return aux(x)\n'
MAIN_ASSIGN_WRAP = "def add_twice(x: int) -> int:\n    v = aux(x)\n    return v\n"
MAIN_ANN_WRAP = "def add_twice(x: int) -> int:\n    v: int = aux(x)\n    return v\n"
MAIN_IGNORES = "def add_twice(x: int) -> int:\n    aux(x)\n    return 2 * x + 1\n"
MAIN_IGNORES_THEN_RETURNS = "def add_twice(x: int) -> int:\n    aux(x)\n    return aux(x)\n"
MAIN_COOP_3_OF_4 = (
    "def add_twice(x: int) -> int:\n    y = aux(x)\n    return y + 1 if x >= 0 else 0\n"
)
MAIN_COOP_1_OF_4 = (
    "def add_twice(x: int) -> int:\n    y = aux(x)\n    return y + 1 if x == 0 else 0\n"
)
MAIN_ALONE_2_OF_4 = "def add_twice(x: int) -> int:\n    return 2 * x + 1 if x > 0 else 99\n"
MAIN_COOP_0_OF_4 = "def add_twice(x: int) -> int:\n    y = aux(x)\n    return y + 7\n"
MAIN_MAP = "def add_twice(x: int) -> int:\n    return sum(map(aux, [x])) + 1\n"
MAIN_OWN_AUX = (
    "def aux(x):\n    return 2 * x\n\n\n"
    "def add_twice(x: int) -> int:\n    y = aux(x)\n    return y + 1\n"
)
MAIN_WRONG_NAME = "def add_thrice(x: int) -> int:\n    return 3 * x\n"
MAIN_BODY_ONLY = "    y = aux(x)\n    return y + 1\n"
MAIN_PRINTS = "def add_twice(x: int) -> int:\n    print(2 * x + 1)\n"
MAIN_BARE_RETURN = "def add_twice(x: int) -> int:\n    y = 2 * x + 1\n    return\n"
MAIN_BROKEN_TAIL = MAIN_ALONE + "\n\nz = = 2\n"


def fenced(code: str) -> str:
    """Wrap code in a ```python block with prose (and an unrelated block) around it."""
    return (
        "Sure! Here is my solution.\n\n```python\n"
        + code
        + "```\n\nIt runs in O(1). Example:\n\n```text\nadd_twice(2) -> 5\n```\n"
    )


@dataclass(frozen=True)
class Case:
    """One scored pair and its hand-computed terms."""

    aux: str
    main: str
    structure_aux: float = 0.0
    structure_main: float = 0.0
    syntax: float = 0.0
    tests: float = 0.0
    call: float = 0.0
    nontrivial: float = 0.0
    penalty: float = 0.0
    stopped_at: int = 0
    total: float = 0.0
    problem: CodingProblem = PROBLEM


FULL = {"structure_aux": 0.4, "structure_main": 0.6, "syntax": 0.5}
NO_AUX = {"structure_main": 0.6, "syntax": 0.5}

CASES = {
    # 0.4 + 0.6 + 0.5 + 1.0 + 0.5 + 1.0
    "all_correct_cooperative": Case(
        AUX_DOUBLE, MAIN_COOP, **FULL, tests=1.0, call=0.5, nontrivial=1.0, total=4.0
    ),
    "cooperative_expression": Case(
        AUX_DOUBLE, MAIN_COOP_EXPR, **FULL, tests=1.0, call=0.5, nontrivial=1.0, total=4.0
    ),
    # No call: no cooperation at all.
    "correct_main_without_aux_call": Case(AUX_DOUBLE, MAIN_ALONE, **FULL, tests=1.0, total=2.5),
    # Thin wrappers: the call counts, the non-trivial bonus does not.
    "thin_wrapper_return_aux": Case(AUX_FULL, MAIN_THIN, **FULL, tests=1.0, call=0.5, total=3.0),
    "thin_wrapper_with_docstring": Case(
        AUX_FULL, MAIN_THIN_DOC, **FULL, tests=1.0, call=0.5, total=3.0
    ),
    "thin_wrapper_assign_then_return": Case(
        AUX_FULL, MAIN_ASSIGN_WRAP, **FULL, tests=1.0, call=0.5, total=3.0
    ),
    "thin_wrapper_annotated_assign": Case(
        AUX_FULL, MAIN_ANN_WRAP, **FULL, tests=1.0, call=0.5, total=3.0
    ),
    # 0.4 + 0.6 + 0.5 + 1.0 + 0.5 + 1.0 - 0.5
    "ignored_aux_result": Case(
        AUX_DOUBLE,
        MAIN_IGNORES,
        **FULL,
        tests=1.0,
        call=0.5,
        nontrivial=1.0,
        penalty=-0.5,
        total=3.5,
    ),
    # A bare aux(x) before return aux(x): the body is not only the return, so not thin.
    "ignored_then_return_aux": Case(
        AUX_FULL,
        MAIN_IGNORES_THEN_RETURNS,
        **FULL,
        tests=1.0,
        call=0.5,
        nontrivial=1.0,
        penalty=-0.5,
        total=3.5,
    ),
    # Helper writes no aux: 0 + 0.6 + 0.5 + 1.0.
    "aux_missing_main_alone": Case(AUX_OTHER_NAME, MAIN_ALONE, **NO_AUX, tests=1.0, total=2.1),
    # Main calls a missing aux: NameError in every assert.
    "aux_missing_main_calls_it": Case(AUX_OTHER_NAME, MAIN_COOP, **NO_AUX, total=1.1),
    "aux_and_helper_empty": Case("", MAIN_ALONE, **NO_AUX, tests=1.0, total=2.1),
    # aux is defined but returns nothing: no 0.4; main solves it alone.
    "aux_without_return": Case(AUX_NO_RETURN, MAIN_ALONE, **NO_AUX, tests=1.0, total=2.1),
    # Missing entry point stops the sum after the aux structure term.
    "entry_point_missing_aux_ok": Case(
        AUX_DOUBLE, MAIN_WRONG_NAME, structure_aux=0.4, stopped_at=1, total=0.4
    ),
    "entry_point_missing_aux_missing": Case(AUX_OTHER_NAME, MAIN_WRONG_NAME, stopped_at=1),
    "main_empty": Case(AUX_DOUBLE, "", structure_aux=0.4, stopped_at=1, total=0.4),
    "main_body_without_def": Case(
        AUX_DOUBLE, MAIN_BODY_ONLY, structure_aux=0.4, stopped_at=1, total=0.4
    ),
    # An entry point that returns no value stops like a missing one.
    "entry_point_prints_instead_of_returning": Case(
        AUX_DOUBLE, MAIN_PRINTS, structure_aux=0.4, stopped_at=1, total=0.4
    ),
    "entry_point_bare_return": Case(
        AUX_DOUBLE, MAIN_BARE_RETURN, structure_aux=0.4, stopped_at=1, total=0.4
    ),
    # Syntax errors stop the sum after structure.
    "syntax_error_in_aux_def": Case(
        AUX_BROKEN_DEF, MAIN_ALONE, structure_main=0.6, stopped_at=2, total=0.6
    ),
    "syntax_error_after_aux": Case(
        AUX_BROKEN_TAIL,
        MAIN_COOP_EXPR,
        structure_aux=0.4,
        structure_main=0.6,
        stopped_at=2,
        total=1.0,
    ),
    "syntax_error_in_main": Case(
        AUX_DOUBLE,
        MAIN_BROKEN_TAIL,
        structure_aux=0.4,
        structure_main=0.6,
        stopped_at=2,
        total=1.0,
    ),
    # No assert passes: no cooperation even though main calls aux non-trivially.
    "zero_tests_no_cooperation": Case(AUX_ZERO, MAIN_COOP_0_OF_4, **FULL, total=1.5),
    # 0.4 + 0.6 + 0.5 + 0.75 + 0.5 + 1.0
    "three_of_four_with_cooperation": Case(
        AUX_DOUBLE, MAIN_COOP_3_OF_4, **FULL, tests=0.75, call=0.5, nontrivial=1.0, total=3.75
    ),
    # One assert passing is enough to unlock cooperation: 1.5 + 0.25 + 1.5.
    "one_of_four_with_cooperation": Case(
        AUX_DOUBLE, MAIN_COOP_1_OF_4, **FULL, tests=0.25, call=0.5, nontrivial=1.0, total=3.25
    ),
    "two_of_four_without_aux_call": Case(
        AUX_DOUBLE, MAIN_ALONE_2_OF_4, **FULL, tests=0.5, total=2.0
    ),
    # main's own aux shadows the helper's: cooperation is 0 though all tests pass.
    "main_defines_own_aux": Case(AUX_DOUBLE, MAIN_OWN_AUX, **FULL, tests=1.0, total=2.5),
    # The helper's aux is missing and the context's aux is called: not the helper's, no coop.
    "aux_only_in_context": Case(
        AUX_OTHER_NAME,
        MAIN_COOP,
        **NO_AUX,
        tests=1.0,
        total=2.1,
        problem=CodingProblem(
            entry_point=PROBLEM.entry_point,
            tests=PROBLEM.tests,
            context="def aux(x):\n    return 2 * x\n",
        ),
    ),
    "fenced_blocks_with_prose": Case(
        fenced(AUX_DOUBLE),
        fenced(MAIN_COOP),
        **FULL,
        tests=1.0,
        call=0.5,
        nontrivial=1.0,
        total=4.0,
    ),
    # aux never returns: every assert hits the time limit, none passes, no cooperation.
    "aux_loops_forever": Case(AUX_LOOPS, MAIN_COOP, **FULL, total=1.5),
    # Only the negative-x assert times out; the others still run (each in isolation).
    "aux_loops_on_one_assert": Case(
        AUX_LOOPS_NEGATIVE,
        MAIN_COOP,
        **FULL,
        tests=0.75,
        call=0.5,
        nontrivial=1.0,
        total=3.75,
    ),
    # Passing aux to a call (map) counts as calling it (CooperationFlags docstring).
    "aux_passed_to_map": Case(
        AUX_DOUBLE, MAIN_MAP, **FULL, tests=1.0, call=0.5, nontrivial=1.0, total=4.0
    ),
    # No tests at all: no assert can pass, so no tests points and no cooperation.
    "problem_without_tests": Case(
        AUX_DOUBLE,
        MAIN_COOP,
        **FULL,
        total=1.5,
        problem=CodingProblem(entry_point="add_twice", tests=()),
    ),
}

_SCORES: dict[str, object] = {}


def scored(name: str):
    """Score a case once per session (each score is a sandbox run)."""
    if name not in _SCORES:
        case = CASES[name]
        _SCORES[name] = score_coding(case.problem, case.aux, case.main, timeout_s=TIMEOUT_S)
    return _SCORES[name]


@pytest.mark.parametrize("name", list(CASES))
def test_terms_and_total(name: str) -> None:
    """Every term, the stop level and the total match the hand computation."""
    case = CASES[name]
    score = scored(name)
    got = {
        "structure_aux": score.structure_aux,
        "structure_main": score.structure_main,
        "syntax": score.syntax,
        "tests": score.tests,
        "call": score.cooperation_call,
        "nontrivial": score.cooperation_nontrivial,
        "penalty": score.cooperation_ignored_penalty,
        "stopped_at": score.stopped_at,
        "total": score.total,
    }
    want = {
        "structure_aux": case.structure_aux,
        "structure_main": case.structure_main,
        "syntax": case.syntax,
        "tests": case.tests,
        "call": case.call,
        "nontrivial": case.nontrivial,
        "penalty": case.penalty,
        "stopped_at": case.stopped_at,
        "total": case.total,
    }
    assert got == pytest.approx(want)


@pytest.mark.parametrize("name", list(CASES))
def test_total_is_sum_of_terms_and_bounded(name: str) -> None:
    """The total is the sum of the terms and lies in [0, maximum]."""
    score = scored(name)
    parts = (
        score.structure_aux
        + score.structure_main
        + score.syntax
        + score.tests
        + score.cooperation_call
        + score.cooperation_nontrivial
        + score.cooperation_ignored_penalty
    )
    assert score.total == pytest.approx(parts)
    assert 0.0 <= score.total <= CODING_V0.maximum + 1e-9


@pytest.mark.parametrize("name", list(CASES))
def test_individual_shares_sum_to_team(name: str) -> None:
    """Helper gets aux structure + half the shared terms, main the rest; they sum to the total."""
    case = CASES[name]
    helper, main = scored(name).individual
    shared = case.tests + case.call + case.nontrivial + case.penalty
    assert helper == pytest.approx(case.structure_aux + shared / 2)
    assert main == pytest.approx(case.structure_main + case.syntax + shared / 2)
    assert helper + main == pytest.approx(case.total)


def test_maximum_is_four() -> None:
    """CODING_V0 tops out at 4.0 = 0.4 + 0.6 + 0.5 + 1.0 + 0.5 + 1.0."""
    assert CODING_V0.maximum == pytest.approx(4.0)


def test_individual_shares_of_the_best_pair() -> None:
    """In the 4.0 case the helper gets 0.4 + 1.25 = 1.65 and main 1.1 + 1.25 = 2.35."""
    helper, main = scored("all_correct_cooperative").individual
    assert (helper, main) == pytest.approx((1.65, 2.35))


def test_ignored_result_individual_shares() -> None:
    """With the -0.5 penalty the shared part is 2.0: helper 1.4, main 2.1."""
    helper, main = scored("ignored_aux_result").individual
    assert (helper, main) == pytest.approx((1.4, 2.1))


def test_partial_tests_counts() -> None:
    """3 of 4 asserts pass in the partial case, so the tests term is exactly 0.75."""
    score = scored("three_of_four_with_cooperation")
    assert (score.tests_passed, score.tests_total) == (3, 4)


def test_timeout_case_counts_every_assert() -> None:
    """A looping aux fails every assert by time limit but all four are counted."""
    score = scored("aux_loops_forever")
    assert (score.tests_passed, score.tests_total) == (0, 4)
    assert len(score.failures) >= 1


def test_structure_flags() -> None:
    """The definition flags follow the answers: no-return aux, own aux in main, missing main."""
    no_ret = scored("aux_without_return")
    assert no_ret.aux_defined and not no_ret.aux_returns
    own = scored("main_defines_own_aux")
    assert own.main_defines_aux and own.main_defined and own.main_returns
    missing = scored("main_body_without_def")
    assert not missing.main_defined
    prints = scored("entry_point_prints_instead_of_returning")
    assert prints.main_defined and not prints.main_returns


def test_syntax_error_is_blamed_on_the_right_agent() -> None:
    """The syntax error message names the helper's code or main's code, whichever is at fault."""
    assert "main" in (scored("syntax_error_in_main").syntax_error or "")
    aux_error = scored("syntax_error_after_aux").syntax_error or ""
    assert aux_error and "main" not in aux_error


def test_cooperation_flags() -> None:
    """Flags: thin wrappers are thin, map(aux, ...) is a call, a bare aux(x) ignores its result."""
    assert scored("thin_wrapper_return_aux").flags.thin_wrapper
    assert scored("thin_wrapper_assign_then_return").flags.thin_wrapper
    assert scored("aux_passed_to_map").flags.calls_aux
    assert not scored("aux_passed_to_map").flags.thin_wrapper
    assert scored("ignored_aux_result").flags.ignores_result
    assert not scored("all_correct_cooperative").flags.thin_wrapper
