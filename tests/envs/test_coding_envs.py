"""humaneval_v0 and coophumaneval_v0: module shape, data and splits, canonical answers, prompts."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import re
import resource
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import llm_marl
import llm_marl.envs.coding
import llm_marl.sandbox
from llm_marl.data import bundled_path, read_jsonl
from llm_marl.envs.coding import CodingEnv

ENV_IDS = ("humaneval_v0", "coophumaneval_v0")
AGENTS = ["helper_0", "main_1"]


def canonical_main_only(task) -> dict[str, str]:
    """The data set's reference solution as main's answer, with an empty helper."""
    return {"helper_0": "", "main_1": task.prompt + task.canonical_solution}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_doc_page_names_every_reward_term(env_id: str) -> None:
    """The docstring documents every coding reward term and the individual shares."""
    doc = importlib.import_module(f"llm_marl.envs.{env_id}").__doc__
    for needed in (
        "structure_aux",
        "structure_main",
        "syntax",
        "tests",
        "cooperation_call",
        "cooperation_nontrivial",
        "cooperation_ignored_penalty",
        "Individual shares",
    ):
        assert needed in doc, needed


def test_humaneval_splits_follow_the_papers_reference_code() -> None:
    """train = HumanEval/33..162, test = HumanEval/0..31, all = the 164 problems."""
    ids = {
        split: [t.task_id for t in llm_marl.make("humaneval_v0", split=split).tasks]
        for split in ("train", "test", "all")
    }
    assert ids["test"] == [f"HumanEval/{i}" for i in range(32)]
    assert ids["train"] == [f"HumanEval/{i}" for i in range(33, 163)]
    assert len(ids["all"]) == 164
    assert not set(ids["train"]) & set(ids["test"])
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        llm_marl.make("humaneval_v0", split="validation")


def test_coophumaneval_bundled_splits_are_disjoint() -> None:
    """24 train and 8 held-out test problems, with their helper hints."""
    train, test = (llm_marl.make("coophumaneval_v0", split=s).tasks for s in ("train", "test"))
    assert (len(train), len(test)) == (24, 8)
    assert not {t.task_id for t in train} & {t.task_id for t in test}
    assert all(t.helper_hint and t.canonical_aux and t.canonical_main for t in (*train, *test))


@pytest.mark.parametrize(
    ("env_id", "hub_rows", "expected"),
    [
        ("coophumaneval_v0", {"train": 20}, {"train": (16, 20), "test": (0, 16)}),
        ("humaneval_v0", {"test": 164}, {"train": (33, 163), "test": (0, 32)}),
    ],
)
def test_hub_ids_use_the_papers_row_ranges(monkeypatch, env_id, hub_rows, expected) -> None:
    """The hub set's single split is cut into our train and test as the reference code did."""
    records = read_jsonl(bundled_path("coophumaneval", "train"))
    asked: list[tuple[str, str]] = []

    def fake_hub(source, *, split, bundled, limit=None):
        asked.append((str(source), split))
        return [{**records[i % 24], "task_id": f"hub/{i}"} for i in range(hub_rows[split])]

    monkeypatch.setattr(llm_marl.envs.coding, "load_records", fake_hub)
    hub_id = {
        "coophumaneval_v0": "OpenMLRL/CoopHumanEval",
        "humaneval_v0": "openai/openai_humaneval",
    }
    for split, (start, stop) in expected.items():
        env = llm_marl.make(env_id, data=hub_id[env_id], split=split, max_tasks=200)
        assert [t.task_id for t in env.tasks] == [f"hub/{i}" for i in range(start, stop)]
    assert {s for _, s in asked} == set(hub_rows)


def test_local_jsonl_file_loads_with_optional_columns(tmp_path: Path) -> None:
    """A local JSONL file in HumanEval's schema works; helper_hint and canonicals are optional."""
    record = read_jsonl(bundled_path("coophumaneval", "test"))[0]
    plain = {k: record[k] for k in ("task_id", "prompt", "test", "entry_point")}
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps({**plain, "task_id": "x"}) + "\n")
    env = llm_marl.make("coophumaneval_v0", data=str(path))
    assert [t.task_id for t in env.tasks] == [record["task_id"], "x"]
    assert env.tasks[1].helper_hint == "" and env.tasks[1].canonical_aux is None
    observations, _ = env.reset(options={"task_id": "x"})
    assert "Suggested helper" not in observations["helper_0"]["text"]
    _, rewards, *_ = env.step(
        {"helper_0": record["canonical_aux"], "main_1": record["canonical_main"]}
    )
    assert rewards["main_1"] == pytest.approx(4.0)


def test_record_without_tests_is_rejected_with_the_columns_found() -> None:
    """A record missing a required column names it."""
    env = llm_marl.make("coophumaneval_v0", max_tasks=1)
    with pytest.raises(ValueError, match="no 'test'"):
        env.parse_record({"prompt": "def f():\n    pass\n", "entry_point": "f"}, 0, "train")


def test_every_canonical_humaneval_solution_passes_all_its_tests() -> None:
    """All 164 problems: the reference solution as main's answer passes every assert."""
    tasks = llm_marl.make("humaneval_v0", split="all").tasks

    def run(task_ids: list[str]) -> list[tuple[str, dict, float]]:
        env = llm_marl.make("humaneval_v0", split="all")
        out = []
        for task_id in task_ids:
            env.reset(options={"task_id": task_id})
            _, rewards, *_, infos = env.step(canonical_main_only(env.task))
            out.append((task_id, infos["main_1"]["measures"], rewards["main_1"]))
        return out

    chunks = [[t.task_id for t in tasks[i::4]] for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for chunk in pool.map(run, chunks) for r in chunk]
    assert len(results) == 164
    failing = [
        (tid, m["failed_tests"]) for tid, m, _ in results if m["tests_passed"] != m["tests_total"]
    ]
    assert failing == []
    assert all(m["tests_total"] > 0 for _, m, _ in results)
    # No helper: 0.6 (structure) + 0.5 (syntax) + 1.0 (tests), no cooperation.
    assert {round(reward, 6) for _, _, reward in results} == {2.1}


def test_every_bundled_coophumaneval_problem_reaches_the_full_reward() -> None:
    """canonical_aux (helper) + canonical_main (main) score 4.0 on each of the 32 problems."""
    for split in ("train", "test"):
        env = llm_marl.make("coophumaneval_v0", split=split)
        for task in env.tasks:
            env.reset(options={"task_id": task.task_id})
            actions = {"helper_0": task.canonical_aux, "main_1": task.canonical_main}
            _, rewards, *_, infos = env.step(actions)
            assert rewards == {"helper_0": 4.0, "main_1": 4.0}, (task.task_id, infos["main_1"])


def test_prompts_show_the_problem_and_each_role() -> None:
    """Both see the problem; the helper is asked for aux with the hint, main for the function."""
    env = llm_marl.make("coophumaneval_v0", split="test")
    observations, _ = env.reset(seed=0)
    task = env.task
    helper, main = (observations[a]["text"] for a in AGENTS)
    for text in (helper, main):
        assert task.prompt.strip() in text and task.helper_hint in text
    assert "write a Python function `aux`" in helper
    assert f"def {task.entry_point}(...)" in main and "not only its body" in main


def test_second_turn_feedback_names_syntax_errors_failures_flags_and_partner_code() -> None:
    """Turn 2 prompts show: a syntax error's line and column, failed asserts, flags, code."""
    env = llm_marl.make("coophumaneval_v0", split="test", num_turns=2, max_feedback_asserts=2)
    env.reset(options={"task_id": "CoopHumanEval/30"})
    task = env.task
    broken_main = task.canonical_main + "\nthis line is not python\n"
    observations, rewards, *_ = env.step({"helper_0": task.canonical_aux, "main_1": broken_main})
    assert rewards["main_1"] == pytest.approx(1.0)
    lines = broken_main.strip().count("\n") + 1
    for agent, own, other in (
        ("helper_0", task.canonical_aux, broken_main),
        ("main_1", broken_main, task.canonical_aux),
    ):
        text = observations[agent]["text"]
        assert f"Syntax error in the main code line {lines}, column 6: invalid syntax" in text
        assert f"Your code:\n```python\n{own.strip()}\n```" in text
        assert f"Your teammate's code:\n```python\n{other.strip()}\n```" in text

    env.reset(options={"task_id": "CoopHumanEval/30"})
    wrong_main = f"def {task.entry_point}(limit):\n    aux(limit)\n    return -1\n"
    observations, *_ = env.step({"helper_0": task.canonical_aux, "main_1": wrong_main})
    text = observations["main_1"]["text"]
    total = len(task.tests)
    assert f"Tests: 0 of {total} asserts passed." in text
    assert "Failed tests (first 2; `candidate` is your function):" in text
    assert f"- {task.tests[0]} -> " in text and "AssertionError" in text
    assert "main calls aux: yes; thin wrapper around aux: no; aux result ignored: yes" in text


def test_feedback_of_a_missing_entry_point_says_so() -> None:
    """A bare body: the entry point is not defined and no test ran."""
    env = llm_marl.make("humaneval_v0", split="test", num_turns=2)
    env.reset(options={"task_id": "HumanEval/0"})
    observations, *_ = env.step({"helper_0": "", "main_1": env.task.canonical_solution})
    text = observations["main_1"]["text"]
    assert "`has_close_elements`: not defined." in text and "Tests not run" in text


def test_single_agent_program_is_split_at_def_aux() -> None:
    """coder_0's one program scores like the same code given to the two agents."""
    team = llm_marl.make("coophumaneval_v0", split="test")
    solo = llm_marl.make("coophumaneval_v0", split="test", single_agent=True, num_turns=2)
    observations, _ = solo.reset(seed=3)
    task = solo.task
    assert list(observations) == ["coder_0"] and "def aux(...)" in observations["coder_0"]["text"]
    program = f"Here you go:\n```python\n{task.canonical_main}\n\n{task.canonical_aux}```"
    observations, rewards, *_, infos = solo.step({"coder_0": program})
    team.reset(options={"task_id": task.task_id})
    _, team_rewards, *_ = team.step({"helper_0": task.canonical_aux, "main_1": task.canonical_main})
    assert rewards["coder_0"] == team_rewards["main_1"] == 4.0
    assert infos["coder_0"]["parts_found"] == 2
    assert "Your program:" in observations["coder_0"]["text"]
    assert "Tests: " in observations["coder_0"]["text"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_individual_shares_sum_to_the_team_reward(env_id: str) -> None:
    """helper_0: structure_aux + half of tests and cooperation; main_1 the rest."""
    env = llm_marl.make(env_id, split="test", reward_mode="individual")
    env.reset(seed=1)
    task = env.task
    aux = task.canonical_aux or "def aux(x):\n    return x\n"
    main = task.canonical_main or (task.prompt + task.canonical_solution)
    _, rewards, *_, infos = env.step({"helper_0": aux, "main_1": main})
    terms = infos["helper_0"]["reward_terms"]
    shared = 0.5 * (terms["tests"] + terms["cooperation"])
    assert rewards["helper_0"] == pytest.approx(terms["structure_aux"] + shared)
    assert rewards["main_1"] == pytest.approx(terms["structure_main"] + terms["syntax"] + shared)
    assert rewards["helper_0"] + rewards["main_1"] == pytest.approx(terms["total"])


def test_options_are_validated() -> None:
    """Bad sandbox options fail at construction, naming the option."""
    for kwargs in ({"test_timeout_s": 0}, {"test_memory_mb": 0}, {"max_feedback_asserts": -1}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            llm_marl.make("coophumaneval_v0", **kwargs)
    env = llm_marl.make("coophumaneval_v0", test_timeout_s=2, max_feedback_asserts=0)
    assert isinstance(env, CodingEnv) and env.test_timeout_s == 2.0


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_aec_episode_plays_to_the_end_and_envs_pickle(env_id: str) -> None:
    """The AEC env() steps agent by agent; a pickled parallel env resumes identically."""
    module = importlib.import_module(f"llm_marl.envs.{env_id}")
    aec = module.env()
    aec.reset(seed=0)
    for _ in aec.agent_iter():
        _, _, terminated, truncated, _ = aec.last()
        aec.step(None if terminated or truncated else "def aux(x):\n    return x\n")
    assert aec.agents == []
    env = llm_marl.make(env_id, num_turns=2)
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    actions = {"helper_0": "def aux(x):\n    return x\n", "main_1": "not code"}
    assert clone.step(actions) == env.step(actions)


class _ThreeCoders(llm_marl.envs.coding.CodingEnv):
    """Two helpers and main on the bundled CoopHumanEval sample."""

    roles = ("helper", "helper", "main")
    bundled_data = "coophumaneval"


def test_three_coders_write_aux_0_aux_1_and_main() -> None:
    """Helper k is asked for aux_k, main for the entry point; later turns show teammates' code."""
    env = _ThreeCoders(num_turns=2)
    observations, _ = env.reset(seed=0)
    assert env.helper_names == ("aux_0", "aux_1")
    assert "write a Python function `aux_1`" in observations["helper_1"]["text"]
    assert "Your teammates' `aux_0`, `aux_1` are defined" in observations["main_2"]["text"]
    observations, _, _, _, infos = env.step(env.reference_actions())
    assert infos["main_2"]["team_reward"] == pytest.approx(4.0)
    text = observations["helper_0"]["text"]
    assert "Your teammates' code:\n[helper_1]\n```python\ndef aux_1(value):" in text
    assert "[main_2]\n```python\n" in text and "`aux_1`: defined, returns a value." in text


def test_two_agent_coding_prompt_is_unchanged() -> None:
    """The two-agent team intro and labels are today's texts."""
    env = llm_marl.make("coophumaneval_v0", num_turns=2)
    env.reset(seed=0)
    observations, *_ = env.step(env.reference_actions())
    text = observations["main_1"]["text"]
    assert text.startswith(CodingEnv.task_intro)
    assert "\n\nYour teammate's code:\n```python\n" in text and "[helper_0]" not in text


@contextlib.contextmanager
def no_file_descriptors_left() -> Iterator[None]:
    """This process cannot open another fd: the sandbox cannot make its pipes (a real fault
    of the sandbox's host, not of any program)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    fillers: list[int] = []
    try:
        with contextlib.suppress(OSError):
            while True:
                fillers.append(os.open("/dev/null", os.O_RDONLY))
        yield
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("single_agent", [False, True])
def test_every_agent_is_told_the_sandbox_status_at_reset_and_each_step(
    env_id: str, single_agent: bool
) -> None:
    """``sandbox_status`` is "ok" at reset and after a judged step (passing or failing)."""
    env = llm_marl.make(env_id, num_turns=2, single_agent=single_agent)
    _, infos = env.reset(seed=0)
    assert {a: i["sandbox_status"] for a, i in infos.items()} == dict.fromkeys(env.agents, "ok")
    wrong = {a: "def aux(x):\n    return x\n" for a in env.agents}
    for actions in (wrong, env.reference_actions()):
        *_, infos = env.step(actions)
        assert [i["sandbox_status"] for i in infos.values()] == ["ok"] * len(infos)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_sandbox_failure_is_reported_not_scored_as_failing_tests(env_id: str) -> None:
    """The sandbox cannot run anything: every agent's infos say "sandbox_error" (the reward
    is meaningless; before, a correct answer silently lost every test point) and the next
    turn's feedback says the tests were not judged."""
    env = llm_marl.make(env_id, num_turns=2)
    env.reset(seed=0)
    answers = env.reference_actions()
    llm_marl.sandbox.run_tests("def f():\n    return 1\n", [])  # the zygote is up
    with no_file_descriptors_left():
        observations, *_, infos = env.step(answers)
    assert [i["sandbox_status"] for i in infos.values()] == ["sandbox_error"] * 2
    assert infos["main_1"]["measures"]["sandbox_status"] == "sandbox_error"
    assert "Tests: not judged (the test sandbox failed" in observations["main_1"]["text"]
    *_, infos = env.step(answers)  # the fault is gone: judged again, full reward
    assert [i["sandbox_status"] for i in infos.values()] == ["ok"] * 2
    assert infos["main_1"]["team_reward"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"test": "def check(candidate:\n    assert True\n"}, "its 'test' code does not parse"),
        (
            {"test": "def check(candidate):\n    pass\n"},
            "its 'test' code's check(candidate) has no assert",
        ),
        ({"prompt": ""}, "no 'prompt': coding records need"),
    ],
)
def test_a_refused_coding_record_names_its_file(
    change: dict[str, str], why: str, tmp_path: Path
) -> None:
    """Every way a local record is refused says which file (and record) to fix."""
    record = read_jsonl(bundled_path("coophumaneval", "test"))[0]
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({**record, "task_id": "t/0", **change}) + "\n")
    with pytest.raises(ValueError, match=re.escape(f"record 0 (t/0) of {path}: {why}")):
        llm_marl.make("humaneval_v0", data=str(path))
