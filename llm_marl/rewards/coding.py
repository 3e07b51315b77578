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
- When the sandbox itself fails (status ``sandbox_error``: the runner raised or returned that
  status), no test passes and :attr:`CodingScore.sandbox_failed` is true: the score then says
  nothing about the answers, and the coding envs flag the step in ``infos`` so that it is
  dropped rather than learnt from.

Individual shares (``reward_mode="individual"``): the helper gets ``structure_aux`` plus half of
the tests and cooperation terms; main gets ``structure_main`` + ``syntax`` plus the other half.
The two shares always sum to the team reward.

Teams with more helpers (:func:`score_coding_team`): with H helpers, helper k writes ``aux_k``
(``aux_0``, ``aux_1``, ...; a single helper writes ``aux`` as above) and the joint program
holds every helper's code in team order before main's. ``structure_aux`` gives each helper
``0.4 / H`` for its function; the cooperation terms are earned per helper that main calls
(and does not shadow), each worth ``1 / H`` of the points above. Shares: each helper keeps its
structure points, main ``structure_main`` + ``syntax``, and the tests and cooperation terms are
split evenly over the H + 1 agents. With one helper this is exactly the reward above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llm_marl import sandbox
from llm_marl.checks import check_int
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
    "HelperFacts",
    "TestFailure",
    "TestRunner",
    "helper_names",
    "joint_program",
    "score_coding",
    "score_coding_team",
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
class HelperFacts:
    """What the reward found about one helper function (``aux``, or ``aux_k`` in larger teams)."""

    name: str
    defined: bool = False
    returns: bool = False
    defined_by_main: bool = False
    """Main's code defines a function of this name too (it shadows the helper's)."""
    flags: CooperationFlags = field(default_factory=CooperationFlags)
    """How the entry point uses this helper."""
    structure: float = 0.0
    """This helper's part of ``structure_aux``."""


@dataclass(frozen=True)
class CodingScore:
    """Every term and measurement of one scored joint answer (helpers' code, main's code)."""

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
    """Every helper function is defined."""
    aux_returns: bool = False
    """Every helper function returns a value."""
    main_defined: bool = False
    main_returns: bool = False
    main_defines_aux: bool = False
    """Main defines a function named like one of the helpers."""
    syntax_error: str | None = None
    """``"main code line 3, column 5: invalid syntax"``; the code named is the one at fault."""
    flags: CooperationFlags = field(default_factory=CooperationFlags)
    """Over all helpers: main calls every one, is a thin wrapper or ignores a result of any."""
    tests_passed: int = 0
    tests_total: int = 0
    sandbox_status: str = "not_run"
    sandbox_error: str | None = None
    failures: tuple[TestFailure, ...] = ()
    """The first failed tests with their errors (at most ``max_failures``)."""
    helpers: tuple[HelperFacts, ...] = ()
    """Per helper function, in team order; empty means the one helper ``aux``."""

    @property
    def sandbox_failed(self) -> bool:
        """The sandbox could not judge the program: this score says nothing about it."""
        return self.sandbox_status == "sandbox_error"

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
    def individual(self) -> tuple[float, ...]:
        """(each helper's share, ..., main's share); they sum to :attr:`total`.

        The tests and cooperation terms are split evenly over the whole team; each helper
        also keeps its own part of ``structure_aux``, main keeps ``structure_main + syntax``.
        """
        structures = [h.structure for h in self.helpers] or [self.structure_aux]
        shared = (self.tests + self.cooperation) / (len(structures) + 1)
        return (
            *(structure + shared for structure in structures),
            self.structure_main + self.syntax + shared,
        )

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
        """The facts behind the terms, for ``infos`` (deterministic: no timings or paths).

        Per helper ``h`` (``aux``, or ``aux_0``, ``aux_1``, ...): ``h_defined``, ``h_returns``,
        ``main_defines_h``, ``calls_h`` and ``ignores_h_result``; ``thin_wrapper`` is true
        when main is a thin wrapper around any helper.
        """
        helpers = self.helpers or (
            HelperFacts(AUX_NAME, self.aux_defined, self.aux_returns, self.main_defines_aux),
        )
        facts: dict[str, Any] = {}
        for helper in helpers:
            facts[f"{helper.name}_defined"] = helper.defined
            facts[f"{helper.name}_returns"] = helper.returns
        facts |= {
            "main_defined": self.main_defined,
            "main_returns": self.main_returns,
        }
        facts |= {f"main_defines_{h.name}": h.defined_by_main for h in helpers}
        facts["syntax_error"] = self.syntax_error
        flags = [h.flags for h in self.helpers] if self.helpers else [self.flags]
        for helper, flag in zip(helpers, flags, strict=True):
            facts[f"calls_{helper.name}"] = flag.calls_aux
        facts["thin_wrapper"] = self.flags.thin_wrapper
        for helper, flag in zip(helpers, flags, strict=True):
            facts[f"ignores_{helper.name}_result"] = flag.ignores_result
        return facts | {
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
            "sandbox_status": self.sandbox_status,
            "sandbox_error": self.sandbox_error,
            "failed_tests": [f.as_dict() for f in self.failures],
            "stopped_at_level": self.stopped_at,
        }


def helper_names(num_helpers: int) -> tuple[str, ...]:
    """The helper functions of a team with ``num_helpers`` helpers: ``aux`` for one, else
    ``aux_0``, ``aux_1``, ... (helper k writes ``aux_k``)."""
    check_int("num_helpers", num_helpers, 1)
    if num_helpers == 1:
        return (AUX_NAME,)
    return tuple(f"{AUX_NAME}_{k}" for k in range(num_helpers))


def joint_program(problem: CodingProblem, aux_code: str | Sequence[str], main_code: str) -> str:
    """The program the tests run against: context, then the helpers' code in order, then main's."""
    helpers = (aux_code,) if isinstance(aux_code, str) else tuple(aux_code)
    parts = (problem.context, *helpers, main_code)
    return "\n\n\n".join(part for part in parts if part.strip())


def _locate_syntax_error(
    problem: CodingProblem, helper_codes: Sequence[tuple[str, str]], main_code: str
) -> str | None:
    """The syntax error of the joint program, reported in the code of the agent at fault."""
    for where, code in (*((f"{n} code", c) for n, c in helper_codes), ("main code", main_code)):
        found = syntax_problem(code)
        if found is not None:
            return f"{where} {found.describe()}"
    program = joint_program(problem, [c for _, c in helper_codes], main_code)
    found = syntax_problem(program)
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
    return score_coding_team(
        problem,
        (aux_text,),
        main_text,
        spec=spec,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        max_failures=max_failures,
        runner=runner,
    )


def score_coding_team(
    problem: CodingProblem,
    helper_texts: Sequence[str],
    main_text: str,
    *,
    spec: CodingRewardSpec = CODING_V0,
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    max_failures: int = 3,
    runner: TestRunner | None = None,
) -> CodingScore:
    """Score the responses of one or more helpers and main's ``main_text`` on ``problem``.

    Helper k writes function ``helper_names(len(helper_texts))[k]``. With one helper this is
    :func:`score_coding`. With more, ``structure_aux`` and the three cooperation terms are
    split evenly over the helpers: each helper earns ``structure_aux / H`` for its function,
    and main earns the cooperation points ``/ H`` for each helper it calls (and uses).
    """
    if isinstance(helper_texts, str) or not helper_texts:
        raise ValueError(
            f"helper_texts must be a sequence of one or more str, got {helper_texts!r}"
        )
    names = helper_names(len(helper_texts))
    helper_codes = [(n, extract_code(t)) for n, t in zip(names, helper_texts, strict=True)]
    main_code = extract_code(main_text)
    helpers = [
        _helper_facts(name, code, main_code, spec, len(names)) for name, code in helper_codes
    ]
    main = find_function(main_code, problem.entry_point)
    facts: dict[str, Any] = {
        "aux_defined": all(h.defined for h in helpers),
        "aux_returns": all(h.returns for h in helpers),
        "main_defined": main.defined,
        "main_returns": main.returns_value,
        "main_defines_aux": any(h.defined_by_main for h in helpers),
        "structure_aux": sum(h.structure for h in helpers),
        "helpers": tuple(helpers),
    }
    if not (main.defined and main.returns_value):
        return CodingScore(**facts, stopped_at=1)
    facts["structure_main"] = spec.structure_main
    error = _locate_syntax_error(problem, helper_codes, main_code)
    if error is not None:
        return CodingScore(**facts, stopped_at=2, syntax_error=error)
    facts["syntax"] = spec.syntax
    helpers = [
        replace(h, flags=cooperation_flags(main_code, problem.entry_point, h.name)) for h in helpers
    ]
    facts["helpers"] = tuple(helpers)
    facts["flags"] = CooperationFlags(
        calls_aux=all(h.flags.calls_aux for h in helpers),
        thin_wrapper=any(h.flags.thin_wrapper for h in helpers),
        ignores_result=any(h.flags.ignores_result for h in helpers),
    )
    program = joint_program(problem, [c for _, c in helper_codes], main_code)
    run = _run_tests(problem, program, runner, timeout_s, memory_mb, max_failures)
    facts.update(run)
    passed, total = run["tests_passed"], run["tests_total"]
    facts["tests"] = spec.tests * passed / total if total else 0.0
    if passed > 0:
        facts.update(_cooperation_terms(helpers, spec))
    return CodingScore(**facts)


def _helper_facts(
    name: str, code: str, main_code: str, spec: CodingRewardSpec, num_helpers: int
) -> HelperFacts:
    found = find_function(code, name)
    ok = found.defined and found.returns_value
    return HelperFacts(
        name=name,
        defined=found.defined,
        returns=found.returns_value,
        defined_by_main=find_function(main_code, name).defined,
        structure=spec.structure_aux / num_helpers if ok else 0.0,
    )


def _cooperation_terms(helpers: Sequence[HelperFacts], spec: CodingRewardSpec) -> dict[str, float]:
    """Cooperation points per helper main calls (and does not shadow), split over the helpers."""
    terms = dict.fromkeys(
        ("cooperation_call", "cooperation_nontrivial", "cooperation_ignored_penalty"), 0.0
    )
    for helper in helpers:
        if helper.defined and not helper.defined_by_main and helper.flags.calls_aux:
            flags, share = helper.flags, len(helpers)
            terms["cooperation_call"] += spec.cooperation_call / share
            terms["cooperation_nontrivial"] += (
                0.0 if flags.thin_wrapper else spec.cooperation_nontrivial / share
            )
            terms["cooperation_ignored_penalty"] += (
                -spec.cooperation_ignored_penalty / share if flags.ignores_result else 0.0
            )
    return terms


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
