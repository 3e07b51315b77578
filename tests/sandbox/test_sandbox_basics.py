"""run_tests on honest programs: verdicts, statuses, error texts, determinism, isolation()."""

from __future__ import annotations

import dataclasses

import pytest

from llm_marl.sandbox import STATUSES, SandboxResult, isolation, run_many, run_tests

PROGRAM = """
import math

def aux(x):
    return x * 2

def main(x):
    return aux(x) + 1
"""


def test_a_correct_program_passes_every_test(clean_host: None) -> None:
    """Asserts, loops with asserts and setup blocks all pass; status ok, no error."""
    tests = [
        "assert main(1) == 3",
        "for i in range(5):\n    assert main(i) == 2 * i + 1",
        "y = main(2)\nassert y == 5, 'five'",
        "assert math.isclose(main(0.5), 2.0)",
    ]
    result = run_tests(PROGRAM, tests)
    assert result == SandboxResult(4, 4, "ok", [True] * 4, None, [None] * 4, "")


def test_failing_tests_carry_their_first_error_line_with_the_line_number() -> None:
    """AssertionError (with its message), NameError in the program, ZeroDivisionError."""
    program = "def main(x):\n    return aux(x)\n\ndef div(x):\n    return 1 / x\n"
    tests = [
        "assert div(1) == 2",
        "assert main(1) == 2",
        "assert div(0) == 1",
        "x = 1\nassert div(1) == 0, f'got {x}'",
    ]
    result = run_tests(program, tests)
    assert result.status == "ok" and result.passed == 0
    assert result.per_test_errors == [
        "AssertionError (test line 1)",
        "NameError: name 'aux' is not defined (program line 2)",
        "ZeroDivisionError: division by zero (program line 5)",
        "AssertionError: got 1 (test line 2)",
    ]
    assert result.error == "test 0: AssertionError (test line 1)"


def test_a_syntax_error_in_the_program_is_found_before_spawning() -> None:
    """status syntax_error, with the line and column, every test failed."""
    result = run_tests("def main(x):\n    return x +\n", ["assert main(1) == 1"])
    assert result.status == "syntax_error"
    assert result.error == "SyntaxError: invalid syntax (program line 2, col 15)"
    assert result.per_test == [False] and result.passed == 0


def test_a_test_that_does_not_parse_is_the_callers_error() -> None:
    """Tests are trusted code: a broken one raises naming its index (before: it counted as
    a failure of the program), even when the program does not parse either."""
    message = r"tests\[0\] does not parse: SyntaxError: invalid syntax \(test line 1, col 5\)"
    with pytest.raises(ValueError, match=message):
        run_tests(PROGRAM, ["def (:", "assert main(1) == 3"])
    with pytest.raises(ValueError, match=r"tests\[1\] does not parse"):
        run_tests("def broken(:", ["assert True", "assert main(1) =="])
    with pytest.raises(ValueError, match=r"^jobs\[1\]: tests\[0\] does not parse"):
        run_many([(PROGRAM, ["assert True"]), (PROGRAM, ["def (:"])])


def test_an_exception_at_top_level_is_a_load_error() -> None:
    """The program's own top-level code raising fails every test with status load_error."""
    result = run_tests("import nonexistent_module_xyz\n", ["assert True"])
    assert result.status == "load_error" and result.per_test == [False]
    assert result.error == (
        "ModuleNotFoundError: No module named 'nonexistent_module_xyz' (program line 1)"
    )


def test_results_are_deterministic() -> None:
    """Same program, same result (object addresses in messages are scrubbed)."""
    program = "def main():\n    raise ValueError(object())\n"
    first, second = (run_tests(program, ["assert main()", "assert 1 == 1"]) for _ in range(2))
    assert first == second
    assert first.per_test_errors[0] == "ValueError: <object object at 0x?> (program line 2)"


def test_no_tests_is_a_valid_run() -> None:
    assert run_tests(PROGRAM, []) == SandboxResult(0, 0, "ok", [], None, [], "")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"tests": "assert main(1) == 3"}, TypeError, "tests must be a list of test snippets"),
        ({"tests": ["assert True", 3]}, TypeError, r"tests\[1\] must be a str, got int"),
        ({"tests": None}, TypeError, "tests must be a list of str, got NoneType"),
        ({"program": None}, TypeError, "program must be a str"),
        ({"timeout_s": 0}, ValueError, "timeout_s must be > 0 and at most 86400"),
        ({"timeout_s": float("inf")}, ValueError, "timeout_s must be > 0 .* got inf"),
        ({"timeout_s": float("nan")}, ValueError, "got nan"),
        ({"timeout_s": "5"}, TypeError, "timeout_s must be a number of seconds, got '5'"),
        ({"memory_mb": 8}, ValueError, "memory_mb must be >= 64"),
        ({"memory_mb": 256.5}, TypeError, "memory_mb must be an int number of MiB, got 256.5"),
        ({"memory_mb": True}, TypeError, "memory_mb must be an int"),
        ({"memory_mb": 1 << 40}, ValueError, "memory_mb must be at most"),
        ({"context": None}, TypeError, r"context must be a str of trusted code \(or ''\)"),
        ({"context": "def broken(:"}, ValueError, "the trusted context does not parse"),
        ({"tests": {"assert True"}}, TypeError, "tests must be a list or tuple, got a set"),
        ({"tests": frozenset()}, TypeError, "tests must be a list or tuple, got a frozenset"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(arguments, error, message) -> None:
    """A wrong argument raises before anything runs (a str for tests ran 1-character tests,
    inf/256.5/None raised OverflowError/TypeError/AttributeError from deep inside)."""
    call = {"program": PROGRAM, "tests": ["assert main(1) == 3"]} | arguments
    with pytest.raises(error, match=message):
        run_tests(call.pop("program"), call.pop("tests"), **call)


def test_run_many_checks_every_job_before_running_any() -> None:
    jobs = [(PROGRAM, ["assert main(1) == 3"]), (PROGRAM, "assert main(1) == 3")]
    with pytest.raises(TypeError, match=r"jobs\[1\]: tests must be a list of test snippets"):
        run_many(jobs)
    with pytest.raises(TypeError, match=r"jobs\[0\] must be a tuple"):
        run_many([PROGRAM])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_workers must be an int >= 1"):
        run_many(jobs[:1], max_workers=0)
    with pytest.raises(TypeError, match=r"jobs must be a list of \(program, tests\).* NoneType"):
        run_many(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got set \(unordered\)"):
        run_many({(PROGRAM, ("assert True",))})


def test_output_is_captured_bounded_and_never_parsed() -> None:
    """Prints end up in `output`; the verdicts ignore them."""
    result = run_tests("print('hello')\n", ["print('PASS'); assert False"])
    assert result.output == "hello\nPASS\n" and result.per_test == [False]


def test_legitimate_builtin_subclasses_and_counters_still_compare() -> None:
    """The AlwaysEqual guard converts subclasses of builtins by their data, not rejects them."""
    program = (
        "import collections\nclass MyInt(int): pass\n"
        "def main():\n    return MyInt(3), collections.Counter('aab')\n"
    )
    tests = [
        "assert main()[0] == 3",
        "assert main()[1] == {'a': 2, 'b': 1}",
        "assert all(x > 0 for x in main()[1].values())",
        "assert not main()[0] == 4",
    ]
    assert run_tests(program, tests).per_test == [True] * 4


def test_run_many_keeps_job_order() -> None:
    """run_many returns one result per job, in order."""
    jobs = [
        (f"def main():\n    return {i}\n", [f"assert main() == {i}", "assert main() == 1"])
        for i in range(4)
    ]
    results = run_many(jobs, max_workers=2)
    assert [r.per_test for r in results] == [[True, i == 1] for i in range(4)]


def test_isolation_reports_every_layer() -> None:
    """The report names the mode; as root here every layer is on, with no errors."""
    report = isolation()
    assert report.mode in ("root", "userns", "none")
    assert set(dataclasses.asdict(report)) >= {"pid_namespace", "net_namespace", "separate_uid"}
    if report.mode == "root":
        assert report.pid_namespace and report.net_namespace and report.mount_namespace
        assert report.separate_uid and report.private_proc and report.errors == ()
    assert "syntax_error" in STATUSES and "timeout" in STATUSES
