"""Conformance checks for llm-marl envs, as library functions (like ``pettingzoo.test``).

Run them on your own env too: ``check_env(MyEnv)`` (or ``functools.partial(MyEnv, ...)``). Each
check builds fresh envs from the factory it is given and raises ``AssertionError`` (or the env's
own error) on a violation. The factory is called without arguments, except by the render and
``max_cycles`` checks, which pass ``render_mode=`` and ``max_cycles=`` as PettingZoo's own tests
do; :func:`check_env` skips those two, with a warning, for a factory that takes no keywords.
Observations may be strings or ``{"text": str}`` dicts (or anything PettingZoo's tests accept).

Envs that supply reference answers (``env.reference_actions()``, a dict agent -> answer for the
current task and turn that reaches every reward level; see
:meth:`llm_marl.env_base.CollaborativeTextEnv.reference_actions`) are also rolled out with them,
so that the determinism check compares every reward term; other envs get sampled actions.
"""

from __future__ import annotations

import copy
import inspect
import io
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import (
    batch_space,
    concatenate,
    create_empty_array,
    iterate,
)
from pettingzoo import ParallelEnv
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, render_test
from pettingzoo.utils.conversions import parallel_to_aec
from pettingzoo.utils.wrappers import BaseParallelWrapper

__all__ = [
    "TEXT_ENV_ADVISORIES",
    "AnswerFn",
    "check_aec_api",
    "check_bad_input",
    "check_determinism",
    "check_env",
    "check_max_cycles",
    "check_parallel_api",
    "check_reference_actions",
    "check_render",
    "check_vector_env",
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
    """``pettingzoo.test.api_test`` on the AEC conversion of the env, warnings as errors.

    Plain ``str`` observations are shown to it as ``{"text": str}`` dicts: ``api_test`` reads
    the ``dtype`` of every non-dict observation, which a ``str`` does not have.
    """
    with _warnings_as_errors():
        api_test(parallel_to_aec(_TextInDict(make_env())), num_cycles=num_cycles)


class _TextInDict(BaseParallelWrapper[Any, Any, Any]):
    """The env with each text-space observation ``s`` shown as ``{"text": s}``."""

    def __init__(self, env: ParallelEnv) -> None:
        super().__init__(env)
        self._spaces: dict[Any, spaces.Space[Any]] = {}

    def observation_space(self, agent: Any) -> spaces.Space[Any]:
        if agent not in self._spaces:  # the same object on every call, as api_test asks
            space = self.env.observation_space(agent)
            wrapped = isinstance(space, spaces.Text)
            self._spaces[agent] = spaces.Dict({"text": space}) if wrapped else space
        return self._spaces[agent]

    def _wrapped(self, observations: dict[Any, Any]) -> dict[Any, Any]:
        return {
            agent: {"text": obs} if isinstance(obs, str) else obs
            for agent, obs in observations.items()
        }

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._wrapped(observations), infos

    def step(self, actions: dict[Any, Any]) -> Any:
        observations, *rest = self.env.step(actions)
        return (self._wrapped(observations), *rest)


def check_render(make_env: Callable[..., ParallelEnv]) -> None:
    """``pettingzoo.test.render_test`` on the AEC conversion, and ``"human"`` mode prints.

    ``make_env(render_mode=mode)`` builds the env for each mode in ``metadata["render_modes"]``;
    in ``"human"`` mode ``render()`` must print something and return ``None``.
    """
    with redirect_stdout(io.StringIO()):  # "human" mode prints every step
        render_test(lambda **kwargs: parallel_to_aec(make_env(**kwargs)))
    if "human" in make_env().metadata.get("render_modes", ()):
        env = make_env(render_mode="human")
        env.reset(seed=0)
        printed = io.StringIO()
        with redirect_stdout(printed):
            result = env.render()
        assert result is None, f"render() in 'human' mode must print and return None: {result!r}"
        assert printed.getvalue().strip(), "render() in 'human' mode printed nothing"


def check_max_cycles(make_env: Callable[..., ParallelEnv]) -> None:
    """``pettingzoo.test.max_cycles_test``: ``make_env(max_cycles=4)`` ends after 4 cycles,
    parallel and AEC."""
    module = types.SimpleNamespace(
        parallel_env=make_env, env=lambda **kwargs: parallel_to_aec(make_env(**kwargs))
    )
    max_cycles_test(module)


def check_vector_env(make_env: EnvFactory, seed: int = 0) -> None:
    """What vector envs (Gymnasium's, SuperSuit's) do with each agent's spaces works.

    Over one episode with sampled actions: the agent's observations batch (``batch_space``,
    ``concatenate``, ``create_empty_array``) and iterate back unchanged, with the single and
    the batched space (SuperSuit uses the single one); they round-trip through ``flatten`` (for
    a flattenable space); batched action samples iterate into actions the env accepts.
    """
    env = make_env()
    seen: dict[Any, list[Any]] = {}
    observations, _ = env.reset(seed=seed)
    while env.agents:
        for agent in env.agents:
            seen.setdefault(agent, []).append(observations[agent])
        actions = {a: _batched_sample(env.action_space(a), seed) for a in env.agents}
        observations = env.step(actions)[0]
    for agent, items in seen.items():
        _check_batch(env.observation_space(agent), items, f"observations of {agent!r}")


def _batched_sample(space: spaces.Space[Any], seed: int) -> Any:
    batched = batch_space(space, 2)
    batched.seed(seed)
    sample = batched.sample()
    actions = list(iterate(batched, sample))
    assert len(actions) == 2 and all(space.contains(a) for a in actions), (
        f"iterate() over a batch of {space} samples gave {actions!r:.200}"
    )
    return actions[0]


def _check_batch(space: spaces.Space[Any], items: list[Any], what: str) -> None:
    n = len(items)
    batch = concatenate(space, items, create_empty_array(space, n))  # type: ignore[arg-type]
    assert batch_space(space, n).contains(batch), f"the batch of {what} is outside batch_space"
    for walked in (list(iterate(batch_space(space, n), batch)), list(iterate(space, batch))):
        assert _same(walked, items), f"iterate() over the batch of {what} changed them"
    if space.is_np_flattenable:
        flat = [spaces.unflatten(space, spaces.flatten(space, item)) for item in items]
        assert _same(flat, items), f"flatten/unflatten changed the {what}"


def _same(a: Any, b: Any) -> bool:
    """Deep equality for nested dicts, sequences, arrays and plain values."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


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


def check_env(make_env: Callable[..., ParallelEnv]) -> None:
    """All checks: PettingZoo parallel and AEC API tests, vector envs, determinism, bad input;
    render and ``max_cycles`` when ``make_env`` takes keyword arguments; for an env with
    reference answers also :func:`check_reference_actions` and determinism under them."""
    check_parallel_api(make_env)
    check_aec_api(make_env)
    check_vector_env(make_env)
    if _takes_keyword(make_env, "render_mode") and _takes_keyword(make_env, "max_cycles"):
        check_render(make_env)
        check_max_cycles(make_env)
    else:
        warnings.warn(
            f"check_env skipped the render and max_cycles checks: {make_env!r} takes no "
            "render_mode or max_cycles keyword; pass the env class or a functools.partial",
            stacklevel=2,
        )
    check_determinism(make_env)
    if has_reference_actions(make_env):
        check_reference_actions(make_env)
        check_determinism(make_env, answer=reference_answer)
    check_bad_input(make_env)


def _takes_keyword(factory: Callable[..., Any], name: str) -> bool:
    try:
        inspect.signature(factory).bind_partial(**{name: None})
    except (TypeError, ValueError):
        return False
    return True
