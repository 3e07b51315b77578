"""The data order of a run depends on (seed, position) only and walks every task per epoch."""

from __future__ import annotations

from toy_env import DigitsEnv

from llm_marl.baselines.tasks import TaskOrder, listed_task_ids


def _ids(order: TaskOrder, start: int, stop: int) -> list[str]:
    return [order.reset_kwargs(k)["options"]["task_id"] for k in range(start, stop)]


def test_each_epoch_is_a_permutation_of_the_tasks() -> None:
    order = TaskOrder(DigitsEnv(num_tasks=5), seed=3)
    first, second = _ids(order, 0, 5), _ids(order, 5, 10)
    assert sorted(first) == sorted(second) == [f"train-{i}" for i in range(5)]
    assert first != second or _ids(order, 10, 15) != first  # reshuffled between epochs


def test_the_order_is_a_function_of_seed_and_position() -> None:
    env = DigitsEnv(num_tasks=7)
    assert _ids(TaskOrder(env, 1), 0, 20) == _ids(TaskOrder(env, 1), 0, 20)
    assert _ids(TaskOrder(env, 1), 0, 20) != _ids(TaskOrder(env, 2), 0, 20)
    assert TaskOrder(env, 1).reset_kwargs(9) == TaskOrder(env, 1).reset_kwargs(9)


def test_envs_without_a_task_list_get_seeds() -> None:
    env = DigitsEnv()
    del env.tasks
    assert listed_task_ids(env) is None
    kwargs = [TaskOrder(env, 0).reset_kwargs(k) for k in range(3)]
    assert all(set(k) == {"seed"} for k in kwargs)
    assert len({k["seed"] for k in kwargs}) == 3
