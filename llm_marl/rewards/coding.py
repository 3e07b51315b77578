"""The coding reward of the MAGRPO paper (reward version ``v0``): a helper ``aux`` and a main.

Agent 1 (the helper) writes ``aux``; agent 2 (main) writes the problem's entry-point function,
which may call ``aux``. Both answers are scored together, level by level. Maximum 4.0:

==============================  ===========================================================  =====
``structure_aux``               ``aux`` is defined at top level and returns a value            0.4
``structure_main``              the entry point is defined and returns a value, else stop      0.6
``syntax``                      the joint program parses, else stop                            0.5
``tests``                       asserts passed / asserts total (each run alone, time limit)    1.0
``cooperation_call``            main calls ``aux``                                             0.5
``cooperation_nontrivial``      ... and main is not a thin wrapper around it                   1.0
``cooperation_ignored_penalty`` ... but a bare ``aux(...)`` statement ignores its result      -0.5
==============================  ===========================================================  =====

The cooperation terms count only when at least one assert passes and the helper's ``aux``
exists. A thin wrapper is an entry point whose body (docstring aside) is only
``return aux(...)``, or ``v = aux(...)`` then ``return v``.

Reading the answers:

- Code is taken from each response by :func:`~llm_marl.rewards.code_analysis.extract_code`
  (fenced blocks tagged ``python``, else untagged blocks, else the whole text).
- Main's answer must hold a full ``def <entry_point>(...)``; a bare function body is not
  guessed at: the entry point counts as missing and the sum stops at 0.4 at most.
- Joint program = the problem's context (what its prompt defines besides the entry point:
  imports, and the helpers or constants some HumanEval prompts give, such as ``poly`` or
  ``encode_cyclic`` that the tests call) + the helper's code + main's code, in that order.
  The paper's reference code kept only the prompt's imports, which made the problems whose
  tests call a prompt-given helper unsolvable unless main rewrote it.
- If main's code defines its own ``aux`` it shadows the helper's (it comes later in the
  program), so main no longer calls the helper's function: the cooperation terms are 0.
- Tests run in :mod:`llm_marl.sandbox`, one call per joint action, never in this process; no
  call is made when the program does not parse or the problem has no tests.

Individual shares (``reward_mode="individual"``): the helper gets ``structure_aux`` plus half of
the tests and cooperation terms; main gets ``structure_main`` + ``syntax`` plus the other half.
The two shares always sum to the team reward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_marl import sandbox
from llm_marl.rewards.code_analysis import (
    CooperationFlags,
    cooperation_flags,
    extract_code,
    find_function,
    syntax_problem,
)

__all__ = [
    "AUX_NAME",
    "CODING_V0",
    "CodingProblem",
    "CodingRewardSpec",
    "CodingScore",
    "TestFailure",
    "TestRunner",
    "joint_program",
    "score_coding",
]

#: The helper function's name, fixed by the task.
AUX_NAME = "aux"

TestRunner = Callable[..., Any]
"""``runner(program, tests, *, timeout_s, memory_mb)`` -> a result shaped like the sandbox's
``SandboxResult`` (``passed``, ``per_test``, ``status``, ``error``, ``per_test_errors``)."""


@dataclass(frozen=True)
class CodingRewardSpec:
    """The points of each term of the coding reward."""

    name: str
    structure_aux: float
    structure_main: float
    syntax: float
    tests: float
    """Points for passing every assert (scaled by the fraction passed)."""
    cooperation_call: float
    cooperation_nontrivial: float
    cooperation_ignored_penalty: float
    """Subtracted (a positive number here) when main ignores an ``aux`` result."""

    @property
    def maximum(self) -> float:
        """The best team reward."""
        return (
            self.structure_aux
            + self.structure_main
            + self.syntax
            + self.tests
            + self.cooperation_call
            + self.cooperation_nontrivial
        )


CODING_V0 = CodingRewardSpec(
    name="coding_v0",
    structure_aux=0.4,
    structure_main=0.6,
    syntax=0.5,
    tests=1.0,
    cooperation_call=0.5,
    cooperation_nontrivial=1.0,
    cooperation_ignored_penalty=0.5,
)


@dataclass(frozen=True)
class CodingProblem:
    """What scoring needs to know about a problem."""

    entry_point: str
    """Name of the function main writes (HumanEval's ``entry_point``)."""
    tests: tuple[str, ...]
    """Test snippets, each one assert or one compound statement, run one by one."""
    context: str = ""
    """Head of every joint program: the prompt's imports, helpers and constants."""
    test_prefix: str = ""
    """Code every test needs first (test-module constants, the ``candidate`` binding)."""


@dataclass(frozen=True)
class TestFailure:
    """One failed test and why (bounded text from the sandbox)."""

    __test__ = False  # not a pytest test class

    test: str
    error: str

    def as_dict(self) -> dict[str, str]:
        """Plain dict, for ``infos``."""
        return {"test": self.test, "error": self.error}


@dataclass(frozen=True)
class CodingScore:
    """Every term and measurement of one scored (aux, main) pair."""

    structure_aux: float = 0.0
    structure_main: float = 0.0
    syntax: float = 0.0
    tests: float = 0.0
    cooperation_call: float = 0.0
    cooperation_nontrivial: float = 0.0
    cooperation_ignored_penalty: float = 0.0
    """0, or minus the penalty."""
    stopped_at: int = 0
    """1 when the entry point is missing, 2 on a syntax error, else 0."""
    aux_defined: bool = False
    aux_returns: bool = False
    main_defined: bool = False
    main_returns: bool = False
    main_defines_aux: bool = False
    syntax_error: str | None = None
    """``"main code line 3, column 5: invalid syntax"``; the code named is the one at fault."""
    flags: CooperationFlags = field(default_factory=CooperationFlags)
    tests_passed: int = 0
    tests_total: int = 0
    sandbox_status: str = "not_run"
    sandbox_error: str | None = None
    failures: tuple[TestFailure, ...] = ()
    """The first failed tests with their errors (at most ``max_failures``)."""

    @property
    def cooperation(self) -> float:
        """The three cooperation terms together."""
        return (
            self.cooperation_call + self.cooperation_nontrivial + self.cooperation_ignored_penalty
        )

    @property
    def total(self) -> float:
        """The team reward, 0 to 4."""
        return (
            self.structure_aux + self.structure_main + self.syntax + self.tests + self.cooperation
        )

    @property
    def individual(self) -> tuple[float, float]:
        """(helper's share, main's share); they sum to :attr:`total`."""
        shared = 0.5 * (self.tests + self.cooperation)
        return self.structure_aux + shared, self.structure_main + self.syntax + shared

    def terms(self) -> dict[str, float]:
        """Reward terms by name, for ``infos``."""
        return {
            "structure_aux": self.structure_aux,
            "structure_main": self.structure_main,
            "syntax": self.syntax,
            "tests": self.tests,
            "cooperation_call": self.cooperation_call,
            "cooperation_nontrivial": self.cooperation_nontrivial,
            "cooperation_ignored_penalty": self.cooperation_ignored_penalty,
            "cooperation": self.cooperation,
            "total": self.total,
        }

    def measures(self) -> dict[str, Any]:
        """The facts behind the terms, for ``infos`` (deterministic: no timings or paths)."""
        return {
            "aux_defined": self.aux_defined,
            "aux_returns": self.aux_returns,
            "main_defined": self.main_defined,
            "main_returns": self.main_returns,
            "main_defines_aux": self.main_defines_aux,
            "syntax_error": self.syntax_error,
            "calls_aux": self.flags.calls_aux,
            "thin_wrapper": self.flags.thin_wrapper,
            "ignores_aux_result": self.flags.ignores_result,
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
            "sandbox_status": self.sandbox_status,
            "sandbox_error": self.sandbox_error,
            "failed_tests": [f.as_dict() for f in self.failures],
            "stopped_at_level": self.stopped_at,
        }


def joint_program(problem: CodingProblem, aux_code: str, main_code: str) -> str:
    """The program the tests run against: context, then the helper's code, then main's code."""
    return "\n\n\n".join(part for part in (problem.context, aux_code, main_code) if part.strip())


def _locate_syntax_error(problem: CodingProblem, aux_code: str, main_code: str) -> str | None:
    """The syntax error of the joint program, reported in the code of the agent at fault."""
    for where, code in (("aux code", aux_code), ("main code", main_code)):
        found = syntax_problem(code)
        if found is not None:
            return f"{where} {found.describe()}"
    found = syntax_problem(joint_program(problem, aux_code, main_code))
    return None if found is None else f"joint program {found.describe()}"


def score_coding(
    problem: CodingProblem,
    aux_text: str,
    main_text: str,
    *,
    spec: CodingRewardSpec = CODING_V0,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_failures: int = 3,
    runner: TestRunner | None = None,
) -> CodingScore:
    """Score the helper's response ``aux_text`` and main's ``main_text`` on ``problem``.

    Runs at most one ``runner`` call (default :func:`llm_marl.sandbox.run_tests`: all tests,
    each alone with ``timeout_s`` seconds); none when the entry point is missing, the program
    does not parse or the problem has no tests. ``max_failures`` failed tests are reported.
    """
    aux_code, main_code = extract_code(aux_text), extract_code(main_text)
    aux = find_function(aux_code, AUX_NAME)
    main = find_function(main_code, problem.entry_point)
    facts: dict[str, Any] = {
        "aux_defined": aux.defined,
        "aux_returns": aux.returns_value,
        "main_defined": main.defined,
        "main_returns": main.returns_value,
        "main_defines_aux": find_function(main_code, AUX_NAME).defined,
        "structure_aux": spec.structure_aux if aux.defined and aux.returns_value else 0.0,
    }
    if not (main.defined and main.returns_value):
        return CodingScore(**facts, stopped_at=1)
    facts["structure_main"] = spec.structure_main
    error = _locate_syntax_error(problem, aux_code, main_code)
    if error is not None:
        return CodingScore(**facts, stopped_at=2, syntax_error=error)
    facts["syntax"] = spec.syntax
    facts["flags"] = flags = cooperation_flags(main_code, problem.entry_point, AUX_NAME)
    program = joint_program(problem, aux_code, main_code)
    run = _run_tests(problem, program, runner, timeout_s, memory_mb, max_failures)
    facts.update(run)
    passed, total = run["tests_passed"], run["tests_total"]
    facts["tests"] = spec.tests * passed / total if total else 0.0
    if passed > 0 and aux.defined and not facts["main_defines_aux"] and flags.calls_aux:
        facts["cooperation_call"] = spec.cooperation_call
        facts["cooperation_nontrivial"] = 0.0 if flags.thin_wrapper else spec.cooperation_nontrivial
        facts["cooperation_ignored_penalty"] = (
            -spec.cooperation_ignored_penalty if flags.ignores_result else 0.0
        )
    return CodingScore(**facts)


def _run_tests(
    problem: CodingProblem,
    program: str,
    runner: TestRunner | None,
    timeout_s: float,
    memory_mb: int,
    max_failures: int,
) -> dict[str, Any]:
    """Run every test of ``problem`` against ``program`` in one sandbox call.

    The problem's context and test prefix (trusted data-set code: the prompt's helpers, the
    ``candidate = <entry_point>`` binding) go as the runner's trusted ``context``, so the tests
    use them, not the program's versions. Fails safe: if the runner raises, no test passes and
    the status is ``sandbox_error``.
    """
    tests = list(problem.tests)
    if not tests:
        return {"tests_passed": 0, "tests_total": 0, "sandbox_status": "no_tests"}
    runner = runner or sandbox.run_tests
    context = "\n\n\n".join(p for p in (problem.context, problem.test_prefix) if p.strip())
    try:
        result = runner(program, tests, timeout_s=timeout_s, memory_mb=memory_mb, context=context)
        errors = list(getattr(result, "per_test_errors", None) or [])
        errors += [None] * (len(tests) - len(errors))
        failures = [
            TestFailure(test, errors[i] or result.error or "failed")
            for i, (test, ok) in enumerate(zip(tests, result.per_test, strict=True))
            if not ok
        ]
        passed, status, error = int(result.passed), str(result.status), result.error
    except Exception as exc:  # fail safe: a broken sandbox call passes nothing
        error = f"sandbox error: {type(exc).__name__}: {str(exc)[:300]}"
        passed, status = 0, "sandbox_error"
        failures = [TestFailure(test, error) for test in tests]
    return {
        "tests_passed": passed,
        "tests_total": len(tests),
        "sandbox_status": status,
        "sandbox_error": error,
        "failures": tuple(failures[:max_failures]),
    }
