"""Conformance checks for llm-marl envs, as library functions (like ``pettingzoo.test``).

Run them on your own env too: ``check_env(lambda: MyEnv())``. Each check builds fresh envs from
the factory it is given and raises ``AssertionError`` (or the env's own error) on a violation.

Envs that supply reference answers (``env.reference_actions()``, a dict agent -> answer for the
current task and turn that reaches every reward level; see
:meth:`llm_marl.env_base.CollaborativeTextEnv.reference_actions`) are also rolled out with them,
so that the determinism check compares every reward term; other envs get sampled actions.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pettingzoo import ParallelEnv
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

__all__ = [
    "TEXT_ENV_ADVISORIES",
    "AnswerFn",
    "check_aec_api",
    "check_bad_input",
    "check_determinism",
    "check_env",
    "check_parallel_api",
    "check_reference_actions",
    "has_reference_actions",
    "reference_answer",
    "rollout",
]

EnvFactory = Callable[[], ParallelEnv]

#: PettingZoo advisories that assume numeric arrays and cannot hold for text envs; every other
#: warning raised during the API tests is an error.
TEXT_ENV_ADVISORIES: tuple[str, ...] = (
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be",
    "Action space for each agent probably should be",
)


@contextmanager
def _warnings_as_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in TEXT_ENV_ADVISORIES:
            warnings.filterwarnings("ignore", message=message)
        yield


def check_parallel_api(make_env: EnvFactory, num_cycles: int = 50) -> None:
    """``pettingzoo.test.parallel_api_test``, with its warnings treated as errors."""
    with _warnings_as_errors():
        parallel_api_test(make_env(), num_cycles=num_cycles)


def check_aec_api(make_env: EnvFactory, num_cycles: int = 50) -> None:
    """``pettingzoo.test.api_test`` on the AEC conversion of the env, warnings as errors."""
    with _warnings_as_errors():
        api_test(parallel_to_aec(make_env()), num_cycles=num_cycles)


AnswerFn = Callable[[ParallelEnv, str, int], str]
"""``answer(env, agent, step) -> str``: the action of ``agent`` at ``step`` of an episode."""


def rollout(
    env: ParallelEnv,
    seed: int,
    episodes: int,
    answer: AnswerFn | None = None,
    actions_seed: int = 0,
) -> list[tuple[Any, ...]]:
    """Every output of ``episodes`` episodes, the first reset with ``seed``, later ones unseeded.

    Actions come from ``answer`` when given (pass answers that score well on your env, so
    that every reward term is exercised); otherwise even steps sample the agents' action
    spaces (seeded with ``actions_seed``) and odd steps give each agent its own plain answer.
    """
    for agent in env.possible_agents:
        env.action_space(agent).seed(actions_seed)
    trace: list[tuple[Any, ...]] = []
    for episode in range(episodes):
        observations, infos = env.reset(seed=seed if episode == 0 else None)
        trace.append(("reset", copy.deepcopy(observations), copy.deepcopy(infos)))
        step = 0
        while env.agents:
            actions = {agent: (answer or _default_answer)(env, agent, step) for agent in env.agents}
            outputs = env.step(actions)
            trace.append(("step", actions, *copy.deepcopy(outputs)))
            step += 1
    return trace


def _default_answer(env: ParallelEnv, agent: str, step: int) -> str:
    if step % 2 == 0:
        return str(env.action_space(agent).sample())
    detail = " Therefore they ask for advice; for example, they list what they tried." * (
        1 + env.possible_agents.index(agent)
    )
    return (
        f"{agent} in round {step}: the author explains the problem; however, it persists.{detail}"
    )


def reference_answer(env: ParallelEnv, agent: str, step: int) -> str:
    """An :data:`AnswerFn`: the env's own reference answer for ``agent`` this turn.

    Falls back to the sampled and plain answers of :func:`rollout` for an env without
    ``reference_actions`` (or whose ``reference_actions`` raises ``NotImplementedError``).
    """
    method = getattr(env, "reference_actions", None)
    if callable(method):
        try:
            references = method()
        except NotImplementedError:
            pass
        else:
            if not isinstance(references, dict) or not isinstance(references.get(agent), str):
                raise AssertionError(
                    f"reference_actions() must map every live agent to a str; got no str for "
                    f"{agent!r} in {references!r}"
                )
            return references[agent]
    return _default_answer(env, agent, step)


def has_reference_actions(make_env: EnvFactory, seed: int = 0) -> bool:
    """Whether a fresh env, just reset with ``seed``, gives reference answers."""
    env = make_env()
    method = getattr(env, "reference_actions", None)
    if not callable(method):
        return False
    env.reset(seed=seed)
    try:
        method()
    except NotImplementedError:
        return False
    return True


def check_reference_actions(make_env: EnvFactory, seed: int = 7, episodes: int = 3) -> None:
    """The env's reference answers cover every live agent and, where the env reports
    ``infos[agent]["measures"]["stopped_at_level"]``, reach every reward level (it is 0)."""
    env = make_env()
    for agent in env.possible_agents:
        env.action_space(agent).seed(0)
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        while env.agents:
            references = env.reference_actions()  # type: ignore[attr-defined]
            assert isinstance(references, dict) and set(references) == set(env.agents), (
                f"reference_actions() must give one answer per live agent {env.agents}, got "
                f"{sorted(references) if isinstance(references, dict) else references!r}"
            )
            for agent, text in references.items():
                assert env.action_space(agent).contains(text), (
                    f"the reference answer of {agent!r} is not in its action space"
                )
            infos = env.step(references)[-1]
            for agent, info in infos.items():
                stopped = info.get("measures", {}).get("stopped_at_level", 0)
                assert stopped == 0, (
                    f"the reference answer of {agent!r} stops the reward at level {stopped} "
                    f"(task {info.get('task_id')!r})"
                )


def check_determinism(
    make_env: EnvFactory, seed: int = 7, episodes: int = 3, answer: AnswerFn | None = None
) -> None:
    """Two fresh envs with the same seed and actions give identical multi-step outputs."""
    first = rollout(make_env(), seed, episodes, answer)
    second = rollout(make_env(), seed, episodes, answer)
    assert len(first) == len(second), "episode lengths differ between seeded runs"
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        assert a == b, f"seeded runs diverge at output {index} ({a[0]})"
    reseeded = make_env()
    tasks = {str(reseeded.reset(seed=seed)[1]) for _ in range(3)}
    assert len(tasks) == 1, "reset with the same seed picked different tasks"


def check_bad_input(make_env: EnvFactory, seed: int = 3) -> None:
    """Bad actions raise errors naming the agent and leave the env as it was.

    Covered: a non-str action, a missing agent, an unknown agent, a non-dict, a step before
    the first reset, and a step after the episode ended.
    """
    fresh = make_env()
    agents = list(fresh.possible_agents)
    with _expect(ValueError, "reset"):
        fresh.step(dict.fromkeys(agents, "hello"))

    env = make_env()
    env.reset(seed=seed)
    good = dict.fromkeys(agents, "A short answer with several plain words in it.")
    first, *rest = agents
    bad_cases: list[tuple[type[Exception], str, Any]] = [
        (TypeError, first, {**good, first: 42}),
        (TypeError, first, {**good, first: None}),
        (TypeError, first, {**good, first: b"bytes"}),
        (ValueError, "stranger_9", {**good, "stranger_9": "hi"}),
        (TypeError, "dict", list(good.values())),
    ]
    if rest:
        bad_cases.append((ValueError, rest[0], {a: t for a, t in good.items() if a != rest[0]}))
    else:
        bad_cases.append((ValueError, first, {}))
    for error, named, actions in bad_cases:
        with _expect(error, named):
            env.step(actions)

    # Unchanged: the rest of the episode equals that of an env that never saw the bad calls.
    reference = make_env()
    reference.reset(seed=seed)
    while reference.agents:
        assert env.agents == reference.agents, "bad input changed the live agents"
        assert env.step(good) == reference.step(good), "bad input changed the env's later outputs"
    assert not env.agents, "the episode did not end with the reference"
    with _expect(ValueError, "reset"):
        env.step(good)
    with _expect(ValueError, first):
        env.step(good)


@contextmanager
def _expect(error: type[Exception], named: str) -> Iterator[None]:
    try:
        yield
    except error as raised:
        assert named in str(raised), f"{error.__name__} should name {named!r}: {raised}"
    else:
        raise AssertionError(f"expected {error.__name__} naming {named!r}, nothing was raised")


def check_env(make_env: EnvFactory) -> None:
    """All checks: PettingZoo parallel and AEC API tests, determinism, bad input; for an env
    with reference answers also :func:`check_reference_actions` and determinism under them."""
    check_parallel_api(make_env)
    check_aec_api(make_env)
    check_determinism(make_env)
    if has_reference_actions(make_env):
        check_reference_actions(make_env)
        check_determinism(make_env, answer=reference_answer)
    check_bad_input(make_env)
