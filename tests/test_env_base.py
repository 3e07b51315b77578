"""The shared env behaviour: tasks and seeds, turns, reward modes, cutting, single-agent view."""

from __future__ import annotations

import numpy as np
import pytest

import llm_marl
from llm_marl.env_base import part_marker

SHORT = "The author asks whether to move to a new city for a better paid job."
LONG = (
    "The author, who has lived in the same town for ten years, received an offer that pays far "
    "more; however, moving means leaving friends and an ageing parent behind. Therefore they "
    "weigh career growth against family duty and ask readers for advice, for example how "
    "others handled similar relocations."
)


def joint(env, first: str = SHORT, second: str = LONG) -> dict[str, str]:
    return dict(zip(env.possible_agents, (first, second), strict=False))


def test_agents_are_named_role_index() -> None:
    """Agents follow <role>_<index>; the single-agent view has writer_0."""
    assert llm_marl.make("tldr_v0").possible_agents == ["concise_0", "detailed_1"]
    assert llm_marl.make("arxiv_v0").possible_agents == ["background_0", "method_1"]
    assert llm_marl.make("tldr_v0", single_agent=True).possible_agents == ["writer_0"]


def test_same_seed_same_task_and_reward() -> None:
    """Seeded resets pick the same task and the same actions earn the same reward."""
    results = []
    for _ in range(2):
        env = llm_marl.make("tldr_v0")
        _, infos = env.reset(seed=11)
        _, rewards, *_ = env.step(joint(env))
        results.append((infos["concise_0"]["task_id"], rewards))
    assert results[0] == results[1]
    assert results[0][1]["concise_0"] > 0


def test_seeds_spread_over_tasks() -> None:
    """Different seeds reach many different tasks of the split."""
    env = llm_marl.make("tldr_v0")
    seen = {env.reset(seed=seed)[1]["concise_0"]["task_id"] for seed in range(40)}
    assert len(seen) >= 20


def test_unseeded_resets_continue_the_seeded_generator() -> None:
    """reset() without a seed draws the next task from the generator seeded before."""
    ids = []
    for _ in range(2):
        env = llm_marl.make("arxiv_v0")
        env.reset(seed=5)
        ids.append([env.reset()[1]["background_0"]["task_id"] for _ in range(5)])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) > 1


def test_task_id_option_picks_the_task() -> None:
    """options={'task_id': ...} selects that task; an unknown id is a clear error."""
    env = llm_marl.make("tldr_v0", split="test")
    wanted = env.tasks[3].task_id
    observations, infos = env.reset(options={"task_id": wanted})
    assert infos["concise_0"]["task_id"] == wanted
    assert env.tasks[3].document in observations["concise_0"]["text"]
    with pytest.raises(ValueError, match="unknown task_id 'nope'"):
        env.reset(options={"task_id": "nope"})


def test_train_and_test_splits_are_disjoint() -> None:
    """The held-out split shares no document with the training split."""
    for env_id in ("tldr_v0", "arxiv_v0"):
        train = {t.document for t in llm_marl.make(env_id).tasks}
        test = {t.document for t in llm_marl.make(env_id, split="test").tasks}
        assert len(train) >= 48 and len(test) >= 16
        assert not train & test


def test_max_tasks_keeps_the_first_tasks() -> None:
    """max_tasks trims the split."""
    env = llm_marl.make("tldr_v0", max_tasks=5)
    assert [t.task_id for t in env.tasks] == [t.task_id for t in llm_marl.make("tldr_v0").tasks[:5]]


def test_shared_mode_gives_every_agent_the_team_reward() -> None:
    """reward_mode='shared': all agents receive the team reward in infos and rewards."""
    env = llm_marl.make("tldr_v0")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step(joint(env))
    team = infos["concise_0"]["team_reward"]
    assert rewards == {"concise_0": team, "detailed_1": team}
    assert team == pytest.approx(infos["concise_0"]["reward_terms"]["total"])


def test_individual_mode_gives_each_agent_its_share() -> None:
    """reward_mode='individual': each agent gets its own share; shares sum to the team reward."""
    env = llm_marl.make("tldr_v0", reward_mode="individual")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step(joint(env))
    assert rewards["concise_0"] != rewards["detailed_1"]
    assert sum(rewards.values()) == pytest.approx(infos["concise_0"]["team_reward"])
    for agent, reward in rewards.items():
        assert infos[agent]["individual_reward"] == reward


def test_individual_share_is_earned_alone() -> None:
    """An agent inside the word band keeps a share although its partner fails the band."""
    env = llm_marl.make("tldr_v0", reward_mode="individual")
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step(joint(env, SHORT, "Too short."))
    assert infos["concise_0"]["team_reward"] == 0.0
    assert rewards == {"concise_0": 0.25, "detailed_1": 0.0}


def test_infos_carry_terms_task_and_measures() -> None:
    """infos name every reward term, the task, the turn and the word counts."""
    env = llm_marl.make("arxiv_v0")
    env.reset(seed=1)
    *_, infos = env.step(joint(env))
    info = infos["method_1"]
    assert set(info["reward_terms"]) == {
        "level1_structure",
        "level2_length_ratio",
        "level3_unique_ratio",
        "level4_style",
        "structure",
        "coherence",
        "consistency",
        "total",
    }
    assert info["turn"] == 0 and info["task_id"] == env.task.task_id
    assert info["measures"]["words_0"] == len(SHORT.split())
    assert info["action_truncated"] is False


def test_single_turn_episode_terminates_and_agents_leave() -> None:
    """After the last turn every agent is terminated (a fixed horizon, not a time limit: no
    truncation, so RL libraries do not bootstrap past the end) and leaves."""
    env = llm_marl.make("tldr_v0")
    env.reset(seed=0)
    _, _, terminations, truncations, _ = env.step(joint(env))
    assert terminations == {"concise_0": True, "detailed_1": True}
    assert truncations == {"concise_0": False, "detailed_1": False}
    assert env.agents == []


def test_multi_turn_prompts_show_partner_answer_and_review() -> None:
    """Turn 2 prompts show the agent's and its partner's last answers and the team reward."""
    env = llm_marl.make("tldr_v0", num_turns=2)
    first, _ = env.reset(seed=0)
    observations, rewards, terminations, _, infos = env.step(joint(env))
    assert terminations == {"concise_0": False, "detailed_1": False}
    prompt = observations["concise_0"]["text"]
    assert prompt.startswith(first["concise_0"]["text"])
    assert f"Your answer:\n{SHORT}" in prompt
    assert f"Your teammate's answer:\n{LONG}" in prompt
    assert f"team reward {rewards['concise_0']:.2f}" in prompt
    assert f"Your answer:\n{LONG}" in observations["detailed_1"]["text"]
    _, _, terminations, _, infos = env.step(joint(env, LONG, SHORT))
    assert infos["concise_0"]["turn"] == 1
    assert all(terminations.values()) and env.agents == []


def test_oversized_actions_are_cut_and_flagged() -> None:
    """Actions over max_action_chars are cut before scoring and flagged in infos."""
    env = llm_marl.make("tldr_v0", max_action_chars=100)
    env.reset(seed=0)
    *_, infos = env.step(joint(env, SHORT, LONG))
    assert infos["detailed_1"]["action_truncated"] is True
    assert infos["detailed_1"]["action_chars"] == len(LONG)
    assert infos["concise_0"]["action_truncated"] is False
    assert env.history[0].actions["detailed_1"] == LONG[:100]


def test_unicode_prompts_are_kept_and_inside_the_space() -> None:
    """Prompts keep non-ASCII characters and are contained in the observation space."""
    env = llm_marl.make("tldr_v0")
    unicode_tasks = [t for t in env.tasks if not t.document.isascii()]
    assert unicode_tasks
    observations, _ = env.reset(options={"task_id": unicode_tasks[0].task_id})
    for agent, observation in observations.items():
        assert unicode_tasks[0].document in observation["text"]
        assert env.observation_space(agent).contains(observation)


def test_prompts_that_could_outgrow_the_space_fail_at_construction() -> None:
    """max_prompt_chars too small for the first turn, or for answers shown back, fails early."""
    with pytest.raises(ValueError, match="max_prompt_chars=100 is too small"):
        llm_marl.make("arxiv_v0", max_prompt_chars=100)
    llm_marl.make("arxiv_v0", max_prompt_chars=4000, max_action_chars=1000)
    with pytest.raises(ValueError, match=r"later turns add up to 3024; pass max_prompt_chars >="):
        llm_marl.make("arxiv_v0", max_prompt_chars=4000, max_action_chars=1000, num_turns=2)


def test_failed_reset_and_step_leave_the_env_unchanged() -> None:
    """An error inside reset() or step() (after validation) changes nothing."""
    env = llm_marl.make("tldr_v0", num_turns=2)
    env.reset(seed=0)
    state = (env.task, env.history, list(env.agents), env.np_random.bit_generator.state)
    with pytest.raises(ValueError, match="unknown task_id"):
        env.reset(seed=99, options={"task_id": "nope"})
    with pytest.raises(ValueError, match="unknown task_id"):
        env.reset(options={"task_id": ["not", "a", "string"]})

    def broken_prompt(*args):
        raise RuntimeError("prompt failed")

    env.prompt = broken_prompt
    with pytest.raises(RuntimeError, match="prompt failed"):
        env.step(joint(env))
    with pytest.raises(RuntimeError, match="prompt failed"):
        env.reset()
    assert (env.task, env.history, list(env.agents), env.np_random.bit_generator.state) == state


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"seed": True}, TypeError, "seed must be a non-negative int or None, got bool True"),
        ({"seed": np.bool_(False)}, TypeError, "seed must be a non-negative int or None"),
        ({"seed": 1.0}, TypeError, "seed must be a non-negative int or None, got float 1.0"),
        ({"seed": "3"}, TypeError, "got str '3'"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int or None, got -1"),
        ({"options": ["task_id"]}, TypeError, r"options must be a dict .* got list \['task_id'\]"),
        ({"options": "task_id"}, TypeError, "options must be a dict"),
    ],
)
def test_bad_reset_arguments_are_clear_errors_and_change_nothing(
    kwargs: dict, error: type[Exception], message: str
) -> None:
    """reset() refuses a seed that is not an int (a bool included) and options not a dict."""
    env = llm_marl.make("tldr_v0", num_turns=2)
    env.reset(seed=0)
    env.step(joint(env))
    state = (env.task, env.history, list(env.agents), env.np_random.bit_generator.state)
    with pytest.raises(error, match=message):
        env.reset(**kwargs)
    assert (env.task, env.history, list(env.agents), env.np_random.bit_generator.state) == state


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (f"one\n{part_marker(2)}\ntwo", ["one", "two"]),
        (f"{part_marker(1)} one {part_marker(2)} two", ["one", "two"]),
        ("no marker at all", ["no marker at all", ""]),
        (f"{part_marker(2)} only two", ["", "only two"]),
        (f"one {part_marker(3)} x {part_marker(2)} two", ["one [PART 3] x", "two"]),
    ],
)
def test_single_agent_answer_splits_at_markers(text: str, parts: list[str]) -> None:
    """The single-agent answer splits at [PART k] lines; a missing part is empty."""
    assert llm_marl.make("tldr_v0", single_agent=True).split_solo(text) == parts


def test_single_agent_view_scores_like_the_team() -> None:
    """One writer's two parts earn exactly the team reward of the same two answers."""
    team = llm_marl.make("tldr_v0")
    team.reset(seed=4)
    _, team_rewards, _, _, team_infos = team.step(joint(team))
    solo = llm_marl.make("tldr_v0", single_agent=True)
    observations, _ = solo.reset(seed=4)
    assert part_marker(2) in observations["writer_0"]["text"]
    answer = f"{part_marker(1)}\n{SHORT}\n{part_marker(2)}\n{LONG}"
    _, rewards, _, _, infos = solo.step({"writer_0": answer})
    assert rewards["writer_0"] == team_rewards["concise_0"] > 0
    assert infos["writer_0"]["reward_terms"] == team_infos["concise_0"]["reward_terms"]
    assert infos["writer_0"]["parts_found"] == 2


def test_single_agent_multi_turn_review_names_each_part() -> None:
    """The single writer's second-turn prompt reviews each part by its number."""
    env = llm_marl.make("tldr_v0", single_agent=True, num_turns=2)
    env.reset(seed=4)
    observations, *_ = env.step({"writer_0": f"{SHORT}\n{part_marker(2)}\nToo short."})
    text = observations["writer_0"]["text"]
    assert f"Part 1 has {len(SHORT.split())} words, inside the 8-256 band." in text
    assert "Part 2 has 2 words, outside the 8-256 band." in text
    assert "Your answer" not in text and f"{part_marker(2)}\nToo short." in text


def test_render_ansi_returns_the_episode_text() -> None:
    """render_mode='ansi' returns the answers and rewards played so far."""
    env = llm_marl.make("tldr_v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(joint(env))
    text = env.render()
    assert "turn 0: team reward" in text and SHORT in text and LONG in text
    plain = llm_marl.make("tldr_v0")
    with pytest.warns(UserWarning, match="without a render_mode.*render_mode='ansi'") as caught:
        assert plain.render() is None
    assert caught[0].filename == __file__  # the warning points at the caller's line


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_turns": 0}, "num_turns must be an integer >= 1, got 0"),
        ({"num_turns": 1.5}, "num_turns must be an integer >= 1, got 1.5"),
        ({"max_action_chars": 0}, "max_action_chars must be an integer >= 1"),
        ({"reward_mode": "team"}, "reward_mode must be one of .* got 'team'"),
        ({"single_agent": True, "reward_mode": "individual"}, "needs a team"),
        ({"render_mode": "rgb_array"}, "render_mode must be one of"),
        ({"split": "validation"}, "no split 'validation'; available splits: \\['test', 'train'\\]"),
        ({"max_tasks": 0}, "max_tasks must be an integer >= 1, got 0"),
        ({"max_tasks": 2.5}, "max_tasks must be an integer >= 1, got 2.5"),
        ({"max_tasks": True}, "max_tasks must be an integer >= 1, got True"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(kwargs: dict, message: str) -> None:
    """Each bad argument raises a ValueError that quotes the offending value."""
    with pytest.raises(ValueError, match=message):
        llm_marl.make("tldr_v0", **kwargs)


def test_numpy_seeds_and_str_subclasses_are_accepted() -> None:
    """A numpy integer seed works like an int; a str subclass is scored by its characters."""

    class Sneaky(str):
        def __str__(self) -> str:
            return "hijacked"

    env = llm_marl.make("tldr_v0")
    assert env.reset(seed=np.int64(3))[1] == llm_marl.make("tldr_v0").reset(seed=3)[1]
    env.step({"concise_0": Sneaky(SHORT), "detailed_1": LONG})
    assert env.history[0].actions["concise_0"] == SHORT


def test_unknown_agent_space_lookup_is_an_error() -> None:
    """observation_space/action_space of an unknown agent name it."""
    with pytest.raises(ValueError, match="unknown agent 'ghost_3'"):
        llm_marl.make("tldr_v0").observation_space("ghost_3")


def test_a_subclass_refusing_a_record_gets_the_file_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A user env's parse_record ValueError is re-raised with the data file and record."""
    import json

    from llm_marl.envs.tldr_v0 import TLDREnv

    class Picky(TLDREnv):
        def parse_record(self, record, index, split):  # type: ignore[no-untyped-def]
            raise ValueError("too short")

    path = tmp_path / "posts.jsonl"
    path.write_text(json.dumps({"post": "hi"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^record 0 of {path}: too short$"):
        Picky(data=str(path))
