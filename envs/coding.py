"""Shared machinery of the collaborative coding envs: tasks, data, prompts, feedback, scoring.

A coding env is a :class:`~llm_marl.env_base.CollaborativeTextEnv` with two roles: ``helper``
writes a function ``aux``, ``main`` writes the problem's entry-point function and may call
``aux``. A subclass may declare more roles (``roles = ("helper", "helper", "main")``): the
first n - 1 agents are helpers, helper k writing ``aux_k`` (``aux_0``, ``aux_1``, ...), and the
last agent writes the entry point, which may call them all; the joint program is the helpers'
code in team order, then main's, scored by :func:`~llm_marl.rewards.coding.score_coding_team`
(for two agents exactly the two-agent reward). Later turns show each agent its teammates' code,
labelled by agent. Problems come in HumanEval's schema (``task_id``, ``prompt``, ``test``,
``entry_point``, ``canonical_solution``, optionally ``helper_hint``, ``canonical_aux``,
``canonical_main``) and are scored by the coding reward ``v0`` (:mod:`llm_marl.rewards.coding`),
with tests run in :mod:`llm_marl.sandbox`. Reference answers (:meth:`CodingEnv.reference_parts`)
are the task's canonical code.

Every agent's ``infos`` carry ``"sandbox_status"`` at reset and after every step: ``"ok"``, or
``"sandbox_error"`` when the step's program could not be judged because of the sandbox itself
(see :data:`llm_marl.sandbox.STATUSES`). The reward of such a step is meaningless (its tests
count as failed): a trainer drops it instead of learning from it.
"""

from __future__ import annotations

import ast
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from llm_marl.checks import check_int
from llm_marl.data import load_records
from llm_marl.env_base import REVIEW_ALLOWANCE, CollaborativeTextEnv, Observation, part_marker
from llm_marl.env_protocol import SANDBOX_ERROR, SANDBOX_OK
from llm_marl.episode import Outcome, Task, TurnRecord
from llm_marl.rewards.code_analysis import extract_code, prompt_context, split_program
from llm_marl.rewards.coding import (
    AUX_NAME,
    CODING_V0,
    CodingProblem,
    helper_names,
    score_coding_team,
)
from llm_marl.sandbox import split_check

__all__ = ["SANDBOX_ERROR", "SANDBOX_OK", "CodingEnv", "CodingTask", "step_sandbox_status"]

#: Longest assert (and error) text quoted in feedback; longer ones are cut with "...".
FEEDBACK_LINE_CHARS = 160


def step_sandbox_status(outcome: Outcome) -> str:
    """`SANDBOX_ERROR` when the sandbox itself failed to judge the step's program, else
    `SANDBOX_OK` (tests that ran, failed, timed out or were not needed are all judged)."""
    failed = outcome.measures.get("sandbox_status") == "sandbox_error"
    return SANDBOX_ERROR if failed else SANDBOX_OK


@dataclass(frozen=True)
class CodingTask(Task):
    """A programming problem: the statement to show, and the tests to score answers with."""

    prompt: str
    """The problem statement: the entry point's signature and docstring (HumanEval ``prompt``)."""
    entry_point: str
    tests: tuple[str, ...]
    """The asserts of the problem's ``check(candidate)``, one test each."""
    test_prefix: str = ""
    """Code the tests need first (test-module constants, setup of ``check``)."""
    context: str = ""
    """What the prompt defines besides the entry point (imports, helpers): heads the program."""
    helper_hint: str = ""
    """What ``aux`` should do, with its signature (CoopHumanEval), or empty."""
    canonical_solution: str | None = None
    """The data set's reference body of the entry point (HumanEval), for evaluation."""
    canonical_aux: str | None = None
    canonical_main: str | None = None

    @property
    def problem(self) -> CodingProblem:
        """What the reward needs of this task."""
        return CodingProblem(self.entry_point, self.tests, self.context, self.test_prefix)


class CodingEnv(CollaborativeTextEnv[CodingTask]):
    """Helpers write ``aux`` (or ``aux_k``), main writes the entry point; coding reward v0."""

    roles = ("helper", "main")
    solo_role = "coder"
    hub_splits: ClassVar[Mapping[str, tuple[str, slice]]] = MappingProxyType({})
    """For the hub data set: our split name -> (the hub's split, the rows of it we take)."""
    task_intro: ClassVar[str] = (
        "You are one of two Python programmers solving one problem together. The helper writes "
        f"a function `{AUX_NAME}`; the main programmer writes the problem's function and can "
        f"call `{AUX_NAME}`."
    )

    def __init__(
        self,
        *,
        test_timeout_s: float = 5.0,
        test_memory_mb: int = 512,
        max_feedback_asserts: int = 3,
        **kwargs: Any,
    ) -> None:
        """Build the env.

        Args:
            test_timeout_s: time limit of each test in the sandbox, in seconds.
            test_memory_mb: memory limit of the sandboxed program.
            max_feedback_asserts: failed asserts quoted in the next turn's feedback.
            **kwargs: the base class's arguments (``data``, ``split``, ``num_turns``, ...).
        """
        if not (isinstance(test_timeout_s, int | float) and 0 < test_timeout_s < math.inf):
            raise ValueError(f"test_timeout_s must be a positive number, got {test_timeout_s!r}")
        check_int("test_memory_mb", test_memory_mb, 1)
        check_int("max_feedback_asserts", max_feedback_asserts, 0)
        self.test_timeout_s = float(test_timeout_s)
        self.test_memory_mb = test_memory_mb
        self.max_feedback_asserts = max_feedback_asserts
        super().__init__(**kwargs)

    @property
    def helper_names(self) -> tuple[str, ...]:
        """The helper functions, one per helper agent: ``("aux",)``, or ``aux_0``, ``aux_1``..."""
        return helper_names(len(self.roles) - 1)

    def team_intro(self) -> str:
        """The top of every team prompt: :attr:`task_intro` for two agents, else a team text."""
        names = self.helper_names
        if len(names) == 1:
            return self.task_intro
        listed = ", ".join(f"`{n}`" for n in names)
        return (
            f"You are one of {len(self.roles)} Python programmers solving one problem together. "
            f"The helpers write the functions {listed} (one each); the main programmer writes "
            "the problem's function and can call them."
        )

    # ----------------------------------------------------------------- episodes
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Observation], dict[str, dict[str, Any]]]:
        """As in the base class; every agent's infos also say ``"sandbox_status": "ok"``."""
        observations, infos = super().reset(seed=seed, options=options)
        for info in infos.values():
            info["sandbox_status"] = SANDBOX_OK
        return observations, infos

    def step(
        self, actions: Mapping[str, str]
    ) -> tuple[
        dict[str, Observation],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """As in the base class; every agent's infos also carry the step's
        ``"sandbox_status"`` (`step_sandbox_status`): drop the rewards of a
        ``"sandbox_error"`` step, they do not judge the answers."""
        observations, rewards, terminations, truncations, infos = super().step(actions)
        status = step_sandbox_status(self.history[-1].outcome)
        for info in infos.values():
            info["sandbox_status"] = status
        return observations, rewards, terminations, truncations, infos

    # ----------------------------------------------------------------- data
    def load_task_records(
        self, data: str | os.PathLike[str] | None, split: str, max_tasks: int | None
    ) -> list[dict[str, Any]]:
        """Rows of the hub set's split per :attr:`hub_splits`; other sources as in the base."""
        if data is not None and str(data) == self.hub_dataset and self.hub_splits:
            hub_split, rows = self._hub_rows(split)
            records = load_records(str(data), split=hub_split, bundled=self.bundled_data)
            return self._take(records[rows], split, max_tasks)
        return super().load_task_records(data, split, max_tasks)

    def _hub_rows(self, split: str) -> tuple[str, slice]:
        if split not in self.hub_splits:
            raise ValueError(
                f"unknown split {split!r} of {self.hub_dataset}; splits are {list(self.hub_splits)}"
            )
        return self.hub_splits[split]

    def _take(
        self, records: Sequence[dict[str, Any]], split: str, max_tasks: int | None
    ) -> list[dict[str, Any]]:
        if not records:
            raise ValueError(f"no records in split {split!r} of {self.data_source}")
        return list(records[:max_tasks])

    def _text(self, record: Mapping[str, Any], name: str, index: int) -> str:
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self.record_error(
                index,
                f"no {name!r}: coding records need non-empty strings 'prompt', 'test' and "
                f"'entry_point' (HumanEval schema); found columns {sorted(record)}",
                record.get("task_id"),
            )
        return value

    def parse_record(self, record: Mapping[str, Any], index: int, split: str) -> CodingTask:
        """Read a record in HumanEval's schema (CoopHumanEval's extra columns are optional)."""
        fields = {
            name: self._text(record, name, index) for name in ("prompt", "test", "entry_point")
        }
        entry_point = fields["entry_point"].strip()
        task_id = record.get("task_id")
        try:
            prefix, tests = split_check(fields["test"], entry_point)
        except (SyntaxError, ValueError) as err:
            raise self.record_error(
                index, f"its 'test' code does not parse: {err}; fix it or drop the record", task_id
            ) from err
        if not tests:
            raise self.record_error(
                index,
                "its 'test' code's check(candidate) has no assert, so the task would have 0 "
                "tests; add asserts to check(candidate) or drop the record",
                task_id,
            )
        return CodingTask(
            task_id=str(task_id) if task_id not in (None, "") else f"{split}-{index:05d}",
            prompt=fields["prompt"],
            entry_point=entry_point,
            tests=tuple(tests),
            test_prefix=prefix,
            context=prompt_context(fields["prompt"], entry_point),
            helper_hint=_optional_text(record, "helper_hint").strip(),
            canonical_solution=_optional_text(record, "canonical_solution") or None,
            canonical_aux=_optional_text(record, "canonical_aux") or None,
            canonical_main=_optional_text(record, "canonical_main") or None,
        )

    # ----------------------------------------------------------------- prompts
    def _problem_block(self, task: CodingTask) -> str:
        return f"Problem:\n```python\n{task.prompt.strip()}\n```"

    def _instruction(self, task: CodingTask, index: int) -> str:
        """The instruction of team agent ``index``: helper ``index``, or main (the last)."""
        hint = f" Suggested helper: {task.helper_hint}" if task.helper_hint else ""
        names = self.helper_names
        if index < len(names):
            name = names[index]
            return (
                f"Your part: write a Python function `{name}` that does a useful part of the "
                f"work, so that `{task.entry_point}` can call it.{hint} Answer with the complete "
                f"`def {name}(...)` (imports it needs included) in one ```python block; do not "
                f"write `{task.entry_point}` or any tests."
            )
        helper = f" The helper was asked for:{hint[len(' Suggested helper:') :]}" if hint else ""
        if len(names) == 1:
            given = f"Your teammate's `{AUX_NAME}(...)` is defined before your code: call it"
            given += " where it helps, and use its result."
            own = f"`{AUX_NAME}`"
        else:
            own = ", ".join(f"`{n}`" for n in names)
            given = f"Your teammates' {own} are defined before your code: call each where it"
            given += " helps, and use their results."
        return (
            f"Your part: write the complete function `def {task.entry_point}(...)` with the "
            f"signature above (not only its body). {given}{helper} Answer in one "
            f"```python block; do not define {own} yourself, and write no tests."
        )

    def prompt(self, task: CodingTask, agent: str, history: Sequence[TurnRecord]) -> str:
        """The role's instruction on the problem; later turns add the last round's feedback."""
        index = self.team_agents.index(agent)
        text = (
            f"{self.team_intro()}\n\n{self._problem_block(task)}\n\n"
            f"{self._instruction(task, index)}"
        )
        if not history:
            return text
        last = history[-1]
        others = [a for a in self.team_agents if a != agent]
        own = self._shown_code(last.actions[agent])
        if len(others) == 1:
            heading, blocks = "Your teammate's code:\n", ["```python\n{}\n```"]
        else:
            heading, blocks = (
                "Your teammates' code:\n",
                [f"[{a}]\n```python\n{{}}\n```" for a in others],
            )
        labels = (
            "\n\nPrevious round:\nYour code:\n```python\n{}\n```\n\n"
            + heading
            + "\n\n".join(blocks)
            + "\n\nFeedback:\n{}\nWrite your improved code."
        )
        shown = [self._shown_code(last.actions[a]) for a in others]
        room = REVIEW_ALLOWANCE - len(labels.format(*[""] * (len(others) + 2)))
        return text + labels.format(own, *shown, self._review(task, last.outcome, room))

    def _shown_code(self, action: str) -> str:
        """The code of an answer as shown back in feedback (never longer than an action)."""
        return extract_code(action)[: self.max_action_chars]

    def solo_prompt(self, task: CodingTask, history: Sequence[TurnRecord]) -> str:
        """One programmer writes the helper function(s) and the entry point in one program."""
        hint = f" Suggested helper: {task.helper_hint}" if task.helper_hint else ""
        names = self.helper_names
        if len(names) == 1:
            helpers = f"two top-level functions: a helper `def {AUX_NAME}(...)` that does"
            calls = f"calls `{AUX_NAME}` and uses its result"
        else:
            defs = ", ".join(f"`def {n}(...)`" for n in names)
            helpers = f"{len(names) + 1} top-level functions: helpers {defs} that each do"
            calls = "calls each helper and uses its result"
        text = (
            f"You are a Python programmer.\n\n{self._problem_block(task)}\n\nWrite one program "
            f"with {helpers} a useful part of the work,{hint and ' ' + hint.strip()} and the "
            f"complete `def {task.entry_point}(...)`, which {calls}. "
            "Answer in one ```python block, with no tests."
        )
        if not history:
            return text
        last = history[-1]
        program = "\n\n".join(extract_code(last.actions[a]) for a in self.team_agents)
        labels = (
            "\n\nPrevious round:\nYour program:\n```python\n{}\n```\n\nFeedback:\n{}\n"
            "Write your improved program."
        )
        room = REVIEW_ALLOWANCE - len(labels.format("", ""))
        shown = program.strip()[: self.max_action_chars]
        return text + labels.format(shown, self._review(task, last.outcome, room))

    def split_solo(self, text: str) -> list[str]:
        """Split one program into each helper's function (every top-level ``def aux``, or
        ``def aux_k`` per helper) and the rest (main's part).

        An answer with ``[PART 2]`` marker lines is split at them instead (base class rule).
        """
        if part_marker(2) in text:
            return super().split_solo(text)
        parts, rest = [], extract_code(text)
        for name in self.helper_names:
            part, rest = split_program(rest, name)
            parts.append(part)
        return [*parts, rest]

    def join_solo(self, parts: Sequence[str]) -> str:
        """One program: every part's code in team order, in one ```python block."""
        return "```python\n" + "\n\n".join(extract_code(p) for p in parts) + "\n```"

    # ----------------------------------------------------------------- reward
    def score(self, task: CodingTask, actions: Mapping[str, str]) -> Outcome:
        """The coding reward v0 of (the helpers' answers, main's answer)."""
        *helper_texts, main_text = (actions[a] for a in self.team_agents)
        result = score_coding_team(
            task.problem,
            helper_texts,
            main_text,
            timeout_s=self.test_timeout_s,
            memory_mb=self.test_memory_mb,
            max_failures=self.max_feedback_asserts,
        )
        return Outcome(
            team=result.total,
            individual=dict(zip(self.team_agents, result.individual, strict=True)),
            terms=result.terms(),
            measures=result.measures(),
        )

    def _review(self, task: CodingTask, outcome: Outcome, room: int) -> str:
        """The last round's verdict as text, at most ``room`` characters."""
        terms, facts = outcome.terms, outcome.measures
        lines = [f"Team reward {terms['total']:.2f} of {CODING_V0.maximum:.2f}."]
        for name in self.helper_names:
            lines.append(_structure_note(name, facts[f"{name}_defined"], facts[f"{name}_returns"]))
        lines.append(
            _structure_note(task.entry_point, facts["main_defined"], facts["main_returns"])
        )
        if facts["stopped_at_level"] == 1:
            lines.append(f"Tests not run: `def {task.entry_point}` returning a value is needed.")
        elif facts["syntax_error"]:
            lines.append(f"Syntax error in the {facts['syntax_error']}. Tests not run.")
        else:
            lines.extend(_test_notes(facts, self.helper_names))
        return _cut("\n".join(lines), room)

    # ----------------------------------------------------------------- references
    def reference_parts(self, task: CodingTask, turn: int) -> list[str]:
        """The task's ``canonical_aux`` and ``canonical_main``, else its canonical solution as
        ``aux`` and a main that calls it; reaches every level of the coding reward v0.

        With more helpers, helper 0 writes that ``aux`` as ``aux_0``, every other helper a
        pass-through ``aux_k(value)``, and main passes each of its results through them all.
        """
        aux, main = task.canonical_aux, task.canonical_main
        if aux is None or main is None:
            if task.canonical_solution is None:
                raise NotImplementedError(
                    f"task {task.task_id!r} has no canonical_aux/canonical_main nor "
                    "canonical_solution: no reference answers"
                )
            aux = (task.prompt + task.canonical_solution).replace(
                f"def {task.entry_point}(", f"def {AUX_NAME}("
            )
            main = (
                f"def {task.entry_point}(*args):\n    result = {AUX_NAME}(*args)\n"
                "    checked = result\n    return checked\n"
            )
        names = self.helper_names
        if len(names) == 1:
            return [aux, f"```python\n{main}```"]
        helpers = [_renamed(aux, AUX_NAME, names[0])]
        helpers += [f"def {n}(value):\n    return value\n" for n in names[1:]]
        main = _passed_through(_renamed(main, AUX_NAME, names[0]), task.entry_point, names[1:])
        return [*helpers, f"```python\n{main}```"]


def _structure_note(name: str, defined: bool, returns: bool) -> str:
    if not defined:
        return f"`{name}`: not defined."
    return f"`{name}`: defined, " + ("returns a value." if returns else "returns no value.")


def _renamed(code: str, old: str, new: str) -> str:
    """``code`` with every name ``old`` (calls, definitions) renamed ``new``."""

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            return ast.Name(new, node.ctx) if node.id == old else node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            self.generic_visit(node)
            if node.name == old:
                node.name = new
            return node

    return ast.unparse(Rename().visit(ast.parse(code))) + "\n"


def _passed_through(code: str, entry_point: str, names: Sequence[str]) -> str:
    """``code`` with each value the top-level ``entry_point`` returns passed through ``names``."""
    tree = ast.parse(code)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    for name in names:
                        inner.value = ast.Call(ast.Name(name, ast.Load()), [inner.value], [])
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _test_notes(facts: Mapping[str, Any], names: Sequence[str] = (AUX_NAME,)) -> list[str]:
    passed, total = facts["tests_passed"], facts["tests_total"]
    lines = [f"Tests: {passed} of {total} asserts passed."]
    failed = facts["failed_tests"]
    if facts["sandbox_status"] == "sandbox_error":  # nothing is known about the code
        lines = ["Tests: not judged (the test sandbox failed; this says nothing about the code)."]
    elif failed:
        lines.append(f"Failed tests (first {len(failed)}; `candidate` is your function):")
        lines.extend(
            f"- {_one_line(f['test'], FEEDBACK_LINE_CHARS)} -> "
            f"{_one_line(f['error'], FEEDBACK_LINE_CHARS)}"
            for f in failed
        )
    yes = {True: "yes", False: "no"}
    if len(names) > 1:
        per_helper = (
            f"main calls {n}: {yes[facts[f'calls_{n}']]}, {n} result ignored: "
            f"{yes[facts[f'ignores_{n}_result']]}, main defines its own {n}: "
            f"{yes[facts[f'main_defines_{n}']]}"
            for n in names
        )
        thin = yes[facts["thin_wrapper"]]
        lines.append(f"Cooperation: thin wrapper around a helper: {thin}; " + "; ".join(per_helper))
        return lines
    lines.append(
        f"Cooperation: main calls {AUX_NAME}: {yes[facts['calls_aux']]}; thin wrapper around "
        f"{AUX_NAME}: {yes[facts['thin_wrapper']]}; {AUX_NAME} result ignored: "
        f"{yes[facts['ignores_aux_result']]}; main defines its own {AUX_NAME}: "
        f"{yes[facts['main_defines_aux']]}."
    )
    return lines


def _one_line(text: str, limit: int) -> str:
    """``text``'s lines joined by "; " (indentation dropped), cut to ``limit`` characters."""
    return _cut("; ".join(line.strip() for line in text.splitlines() if line.strip()), limit)


def _cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit - 3`` characters and "..." when longer than ``limit``."""
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _optional_text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return value if isinstance(value, str) else ""
