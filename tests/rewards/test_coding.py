"""The coding reward v0: every term, hand-computed, on one small problem; code extraction."""

from __future__ import annotations

import dataclasses

import pytest

from llm_marl.rewards.code_analysis import (
    cooperation_flags,
    extract_code,
    find_function,
    prompt_context,
    split_program,
)
from llm_marl.rewards.coding import (
    CODING_V0,
    CodingProblem,
    helper_names,
    score_coding,
    score_coding_team,
)
from llm_marl.sandbox import split_check

TEST_CODE = """

METADATA = {}


def check(candidate):
    assert candidate([1, 2]) == 5
    assert candidate([]) == 0
    assert candidate([3]) == 9
    assert candidate([1, 1, 1, 1]) == 4
"""
PREFIX, TESTS = split_check(TEST_CODE, "sum_squares")
PROBLEM = CodingProblem("sum_squares", tuple(TESTS), "from typing import List", PREFIX)

AUX = "def aux(x: int) -> int:\n    return x * x\n"
AUX_ALL = "def aux(xs):\n    return sum(x * x for x in xs)\n"
MAIN = (
    "def sum_squares(xs: List[int]) -> int:\n    total = 0\n    for x in xs:\n"
    "        total += aux(x)\n    return total\n"
)
SOLO_MAIN = "def sum_squares(xs):\n    return sum(x * x for x in xs)\n"


def score(aux: str, main: str, **kwargs):
    return score_coding(PROBLEM, aux, main, **kwargs)


def test_full_cooperation_scores_the_maximum_4() -> None:
    """Every term scores: 0.4 + 0.6 + 0.5 + 1 + 0.5 + 1 = 4."""
    result = score(AUX, MAIN)
    assert result.terms() == {
        "structure_aux": 0.4,
        "structure_main": 0.6,
        "syntax": 0.5,
        "tests": 1.0,
        "cooperation_call": 0.5,
        "cooperation_nontrivial": 1.0,
        "cooperation_ignored_penalty": 0.0,
        "cooperation": 1.5,
        "total": pytest.approx(4.0),
    }
    assert CODING_V0.maximum == pytest.approx(4.0)
    measures = result.measures()
    assert (measures["tests_passed"], measures["tests_total"]) == (4, 4)
    assert measures["sandbox_status"] == "ok"
    assert measures["stopped_at_level"] == 0
    assert measures["failed_tests"] == []


@pytest.mark.parametrize(
    "body",
    [
        "    return aux(xs)\n",
        '    """Sum of squares."""\n    return aux(xs)\n',
        "    result = aux(xs)\n    return result\n",
        "    result: int = aux(xs)\n    return result\n",
    ],
    ids=["return_call", "docstring_then_return", "assign_then_return", "annotated_assign"],
)
def test_thin_wrappers_get_the_call_bonus_only(body: str) -> None:
    """A thin wrapper gets +0.5 for calling aux, not the +1.0: 0.4 + 0.6 + 0.5 + 1 + 0.5."""
    result = score(AUX_ALL, f"def sum_squares(xs):\n{body}")
    assert result.cooperation_call == 0.5
    assert result.cooperation_nontrivial == 0.0
    assert result.flags.thin_wrapper
    assert result.total == pytest.approx(3.0)


def test_more_than_a_wrapper_gets_the_nontrivial_bonus() -> None:
    """Assign-then-return of something else than the call's result is not a thin wrapper."""
    result = score(AUX_ALL, "def sum_squares(xs):\n    result = aux(xs)\n    return result + 0\n")
    assert not result.flags.thin_wrapper
    assert result.total == pytest.approx(4.0)


def test_ignored_aux_result_costs_half_a_point() -> None:
    """A bare ``aux(...)`` statement: 0.4 + 0.6 + 0.5 + 1 + 0.5 + 1 - 0.5 = 3.5."""
    main = "def sum_squares(xs):\n    aux(xs)\n    return sum(x * x for x in xs)\n"
    result = score(AUX_ALL, main)
    assert result.cooperation_ignored_penalty == -0.5
    assert result.measures()["ignores_aux_result"]
    assert result.total == pytest.approx(3.5)


def test_missing_aux_gets_no_structure_or_cooperation_points() -> None:
    """No helper code: 0.6 + 0.5 + 1 for a main that solves the problem alone."""
    result = score("", SOLO_MAIN)
    assert (result.structure_aux, result.cooperation) == (0.0, 0.0)
    assert result.total == pytest.approx(2.1)


def test_aux_without_a_return_value_still_exists_for_cooperation() -> None:
    """``aux`` defined without ``return <value>``: no 0.4, but cooperation is scored."""
    main = "def sum_squares(xs):\n    aux(xs)\n    return sum(x * x for x in xs)\n"
    result = score("def aux(xs):\n    print(xs)\n", main)
    assert result.structure_aux == 0.0
    assert result.total == pytest.approx(0.6 + 0.5 + 1.0 + 0.5 + 1.0 - 0.5)


@pytest.mark.parametrize(
    "main",
    [
        "    return sum(aux(x) for x in xs)\n",  # a bare body is not guessed into a function
        "def sum_squares(xs):\n    print(xs)\n",  # defined, but returns no value
        "def other(xs):\n    return sum(aux(x) for x in xs)\n",
        "",
    ],
    ids=["body_only", "no_return", "wrong_name", "empty"],
)
def test_missing_entry_point_stops_the_sum_without_running_tests(main: str) -> None:
    """Only structure_aux can score; the sandbox is not called."""
    calls: list[str] = []
    result = score(AUX, main, runner=lambda program, *a, **k: calls.append(program))
    assert result.total == pytest.approx(0.4)
    assert result.measures()["stopped_at_level"] == 1
    assert result.measures()["sandbox_status"] == "not_run"
    assert calls == []


def test_syntax_error_stops_the_sum_and_names_line_and_column() -> None:
    """A broken line after a well-formed entry point: 0.4 + 0.6, the 0.5 is not added."""
    calls: list[str] = []
    main = SOLO_MAIN + "\nthis line is not python\n"
    result = score(AUX, main, runner=lambda program, *a, **k: calls.append(program))
    assert (result.structure_main, result.syntax) == (0.6, 0.0)
    assert result.total == pytest.approx(1.0)
    assert result.stopped_at == 2
    assert result.syntax_error == "main code line 4, column 6: invalid syntax"
    assert calls == []


def test_syntax_error_in_the_helper_code_is_reported_there() -> None:
    """The helper's broken ``aux`` is not defined (no 0.4) and breaks the joint program."""
    result = score("def aux(x):\n    return x *\n", SOLO_MAIN)
    assert result.total == pytest.approx(0.6)
    assert result.syntax_error is not None
    assert result.syntax_error.startswith("aux code line 2, column")


def test_partial_passes_score_the_fraction_and_list_failures() -> None:
    """3 of 4 asserts: 0.4 + 0.6 + 0.5 + 0.75 + 0.5 + 1 = 3.75; the failure is reported."""
    main = "def sum_squares(xs):\n    return sum(aux(x) for x in xs[:2])\n"
    result = score(AUX, main)
    assert (result.tests_passed, result.tests_total) == (3, 4)
    assert result.tests == pytest.approx(0.75)
    assert result.total == pytest.approx(3.75)
    (failure,) = result.measures()["failed_tests"]
    assert failure["test"] == "assert candidate([1, 1, 1, 1]) == 4"
    assert "AssertionError" in failure["error"]


def test_no_cooperation_points_when_no_assert_passes() -> None:
    """Main calls aux non-trivially but fails every assert: 0.4 + 0.6 + 0.5 only."""
    main = "def sum_squares(xs):\n    return -sum(aux(x) for x in xs) - 1\n"
    result = score(AUX, main)
    assert result.flags.calls_aux and result.tests_passed == 0
    assert result.cooperation == 0.0
    assert result.total == pytest.approx(1.5)


def test_main_defining_its_own_aux_shadows_the_helper_and_gets_no_cooperation() -> None:
    """main's own ``aux`` comes later in the program and wins: 0.4 + 0.6 + 0.5 + 1."""
    main = AUX + "\n\n" + "def sum_squares(xs):\n    return sum(aux(x) for x in xs)\n"
    result = score("def aux(x):\n    return 0\n", main)
    assert result.main_defines_aux and result.tests_passed == 4
    assert result.total == pytest.approx(2.5)


def test_each_assert_has_its_own_time_limit() -> None:
    """An endless loop on one input fails that assert only."""
    main = "def sum_squares(xs):\n    while not xs:\n        pass\n    return sum(map(aux, xs))\n"
    result = score(AUX, main, timeout_s=0.5)
    assert (result.tests_passed, result.tests_total) == (3, 4)
    assert result.flags.calls_aux
    assert result.total == pytest.approx(3.75)


def test_fenced_answers_with_prose_score_like_plain_code() -> None:
    """Prose around ```python blocks is dropped."""
    aux = f"Here is the helper:\n```python\n{AUX}```\nIt squares a number."
    main = f"Sure!\n\n```python\n{MAIN}```\n"
    assert score(aux, main).total == pytest.approx(4.0)


def test_one_sandbox_call_per_joint_action_and_shares_sum_to_the_team_reward() -> None:
    """All tests go in one call; helper's and main's shares add up to the total."""
    from llm_marl.sandbox import run_tests

    calls: list[list[str]] = []

    def spy(program, tests, **kwargs):
        calls.append(list(tests))
        return run_tests(program, tests, **kwargs)

    for aux, main in ((AUX, MAIN), (AUX_ALL, "def sum_squares(xs):\n    return aux(xs)\n")):
        result = score(aux, main, runner=spy)
        helper_share, main_share = result.individual
        assert helper_share + main_share == pytest.approx(result.total)
        assert helper_share == pytest.approx(
            result.structure_aux + 0.5 * (1.0 + result.cooperation)
        )
    assert calls == [TESTS, TESTS]


def test_problem_without_tests_makes_no_sandbox_call() -> None:
    """No tests: the tests term is 0 and nothing runs."""
    problem = CodingProblem("sum_squares", ())
    result = score_coding(problem, AUX, MAIN, runner=lambda *a, **k: pytest.fail("ran"))
    assert result.measures()["sandbox_status"] == "no_tests"
    assert result.total == pytest.approx(1.5)


def test_a_failed_sandbox_is_flagged_whether_it_raises_or_says_so() -> None:
    """A runner that raises, or a sandbox_error result: no test passes and the score says it
    judged nothing (``sandbox_failed``); a program that fails its tests is judged."""
    from llm_marl.sandbox import run_tests

    def broken(*args, **kwargs):
        raise OSError(24, "Too many open files")

    def failing(program, tests, **kwargs):
        result = run_tests(program, tests, **kwargs)
        return dataclasses.replace(result, status="sandbox_error", passed=0)

    raised, reported = score(AUX, MAIN, runner=broken), score(AUX, MAIN, runner=failing)
    for result in (raised, reported):
        assert result.sandbox_failed and result.tests_passed == 0
        assert result.measures()["sandbox_status"] == "sandbox_error"
    assert raised.sandbox_error == "sandbox error: OSError: [Errno 24] Too many open files"
    assert not score(AUX, "def sum_squares(xs):\n    return 0\n").sandbox_failed


# ----------------------------------------------------------------- static analysis


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("def f():\n    return 1\n", "def f():\n    return 1"),
        ("Text\n```python\ndef f():\n    return 1\n```\nMore", "def f():\n    return 1"),
        ("```\nx = 1\n```\n```py\ny = 2\n```", "y = 2"),  # tagged python wins over untagged
        ("```bash\npip install x\n```\n```\nx = 1\n```", "x = 1"),  # other languages dropped
        ("```python\na = 1\n```\ntext\n```python\nb = 2\n```", "a = 1\n\nb = 2"),
        ("```python\ndef f():\n    return 1", "def f():\n    return 1"),  # cut at token limit
        ("    x = 1\n    y = 2\n", "x = 1\ny = 2"),  # uniformly indented: dedented
    ],
    ids=["raw", "fenced", "tag_wins", "other_language", "two_blocks", "unclosed", "indented"],
)
def test_extract_code(text: str, code: str) -> None:
    """Fenced python blocks if present, else the raw text."""
    assert extract_code(text) == code


def test_find_function_reads_blocks_of_code_that_does_not_parse() -> None:
    """A well-formed def next to a broken line is found; a return in a nested def is not its."""
    code = "def aux(x):\n    return x\n\nbroken (\n"
    assert find_function(code, "aux").returns_value
    nested = "def aux(x):\n    def inner():\n        return 1\n    inner()\n"
    info = find_function(nested, "aux")
    assert info.defined and not info.returns_value


def test_aux_passed_to_map_counts_as_a_call() -> None:
    """``map(aux, xs)`` and ``key=aux`` use aux; a call elsewhere in the file does not count."""
    assert cooperation_flags("def f(xs):\n    return list(map(aux, xs))\n", "f").calls_aux
    assert cooperation_flags("def f(xs):\n    return sorted(xs, key=aux)\n", "f").calls_aux
    other = "def g(x):\n    return aux(x)\n\ndef f(x):\n    return g(x)\n"
    assert not cooperation_flags(other, "f").calls_aux


def test_prompt_context_keeps_everything_but_the_entry_point() -> None:
    """Imports, helper functions and constants of the prompt head the joint program."""
    prompt = 'import math\n\nK = 2\n\ndef helper(x):\n    return x\n\ndef f(x):\n    """Doc."""\n'
    assert prompt_context(prompt, "f") == "import math\n\nK = 2\n\ndef helper(x):\n    return x"


def test_split_program_separates_aux_from_the_rest() -> None:
    """The single-agent view: top-level ``def aux`` (with decorators) vs everything else."""
    program = "import math\n\n@cache\ndef aux(x):\n    return x\n\ndef f(x):\n    return aux(x)\n"
    aux, rest = split_program(program)
    assert aux == "@cache\ndef aux(x):\n    return x"
    assert rest == "import math\n\n\ndef f(x):\n    return aux(x)"
    assert split_program("def aux(x):\n    return x\n\ndef f(x) broken\n") == (
        "def aux(x):\n    return x",
        "def f(x) broken",
    )


# ----------------------------------------------------------------- teams with more helpers
AUX_0 = "def aux_0(x):\n    return x * x\n"
AUX_1 = "def aux_1(values):\n    return sum(values)\n"
MAIN_2 = "def sum_squares(xs):\n    squares = [aux_0(x) for x in xs]\n    return aux_1(squares)\n"


def test_one_helper_team_score_is_exactly_score_coding() -> None:
    """score_coding_team with one helper is score_coding: terms, measures and shares."""
    for aux, main in ((AUX, MAIN), (AUX_ALL, "def sum_squares(xs):\n    return aux(xs)\n")):
        pair, team = score(aux, main), score_coding_team(PROBLEM, [aux], main)
        assert team.terms() == pair.terms() and team.individual == pair.individual
        assert team.measures() == pair.measures()
    assert helper_names(1) == ("aux",) and helper_names(3) == ("aux_0", "aux_1", "aux_2")


def test_two_helpers_full_cooperation_scores_the_maximum() -> None:
    """Both helpers defined and used: 4.0, with per-helper facts in the measures."""
    result = score_coding_team(PROBLEM, [AUX_0, AUX_1], MAIN_2)
    assert result.total == pytest.approx(4.0) and result.stopped_at == 0
    measures = result.measures()
    assert measures["aux_0_defined"] and measures["aux_1_returns"]
    assert measures["calls_aux_0"] and measures["calls_aux_1"] and not measures["thin_wrapper"]
    assert "aux_defined" not in measures
    shares = result.individual
    # (tests 1 + cooperation 1.5) / 3 each, helpers 0.2 structure each, main 0.6 + 0.5.
    assert shares == pytest.approx((0.2 + 2.5 / 3, 0.2 + 2.5 / 3, 1.1 + 2.5 / 3))
    assert sum(shares) == pytest.approx(result.total)


def test_a_helper_main_ignores_costs_its_share_of_the_cooperation_points() -> None:
    """Main calls aux_0 only: half of call and nontrivial; a missing aux_1 halves structure."""
    main = MAIN.replace("aux(", "aux_0(")
    result = score_coding_team(PROBLEM, [AUX_0, "def other(x):\n    return x\n"], main)
    assert result.structure_aux == pytest.approx(0.2)
    assert result.cooperation_call == pytest.approx(0.25)
    assert result.cooperation_nontrivial == pytest.approx(0.5)
    assert result.total == pytest.approx(0.2 + 0.6 + 0.5 + 1.0 + 0.75)
    assert result.measures()["aux_1_defined"] is False


def test_syntax_errors_name_the_helper_at_fault() -> None:
    """A broken aux_1 is reported as 'aux_1 code'."""
    result = score_coding_team(PROBLEM, [AUX_0, "def aux_1(:\n"], MAIN_2)
    assert result.stopped_at == 2 and result.syntax_error.startswith("aux_1 code line 1")


def test_team_score_needs_a_sequence_of_helpers() -> None:
    """A bare string or no helper is refused, with the value named."""
    with pytest.raises(ValueError, match="got 'def aux"):
        score_coding_team(PROBLEM, AUX, MAIN)
    with pytest.raises(ValueError, match=r"got \[\]"):
        score_coding_team(PROBLEM, [], MAIN)
