"""The example package of docs/algorithms.md: installed apart, found through its entry point.

``examples/custom_algorithm`` is installed with ``pip --target`` into a temporary folder (never
into the shared venv, which other test runs may be using) and put on ``PYTHONPATH`` of a
command-line subprocess; the in-process test imports it from that folder and removes it after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from llm_marl.baselines import registry
from llm_marl.baselines.rollout import Joint, Node
from llm_marl.models import Completion, SamplingConfig, Team

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_algorithm"
PACKAGE = "llm_marl_drgrpo"
#: No network, no build environment (the venv's setuptools builds it), no shared pip cache.
PIP_OFFLINE = (
    "--no-deps",
    "--no-build-isolation",
    "--no-index",
    "--no-cache-dir",
    "--disable-pip-version-check",
    "--quiet",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed into a folder of its own, offline, with the venv's setuptools."""
    root = tmp_path_factory.mktemp("drgrpo")
    source = root / "src"  # a copy: setuptools writes build/ and *.egg-info beside the sources
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            *PIP_OFFLINE,
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "llm_marl.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_package_adds_an_algorithm_to_the_command_line(
    site: Path, tmp_path: Path
) -> None:
    listed = _cli(site, "algos", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "drgrpo" in listed.stdout
    assert "RuntimeWarning" not in listed.stderr  # the entry point loaded without complaint

    runs = tmp_path / "runs"
    trained = _cli(
        site,
        "train",
        "--algo",
        "drgrpo",
        "--env",
        "tldr_v0",
        "--model",
        "tiny",
        "--num-steps",
        "2",
        "--max-new-tokens",
        "8",
        "--no-progress",
        "--output-dir",
        str(runs),
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = runs / "drgrpo-tldr_v0-seed0"
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    assert "algo: drgrpo" in (run_dir / "config.yaml").read_text().splitlines()

    refused = _cli(site, "train", "--algo", "drgrpo", "--scale-by-std", "--num-steps", "1")
    assert refused.returncode == 2
    assert "scale_by_std" in refused.stderr


@pytest.fixture
def drgrpo(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example's trainer module, imported from the install folder, forgotten after."""
    registry.list_algorithms()  # load the registry first, so it never keeps the temporary path
    monkeypatch.syspath_prepend(str(site))
    import llm_marl_drgrpo.trainer as module

    yield module
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


class LinearTeam(Team):
    """Every token of agent a has log-prob ``-theta_a`` (one parameter per agent, 1 at first)."""

    def __init__(self, agents: list[str]) -> None:
        super().__init__(agents, source="linear")
        self.theta = {a: torch.nn.Parameter(torch.ones(())) for a in agents}

    def generate(self, requests: Any, config: SamplingConfig) -> Any:
        raise NotImplementedError

    def _logprobs(self, completions: Any, temperatures: Any, batch_size: Any, **_: Any) -> Any:
        return [-self.theta[c.agent] * torch.ones(c.num_tokens) for c in completions]

    def trainable_parameters(self, agent: str) -> list[torch.nn.Parameter]:
        return [self.theta[agent]]

    def tokenizer(self, agent: str) -> Any:
        return None

    def save_pretrained(self, path: Any) -> Any:
        raise NotImplementedError


def _completion(agent: str, tokens: int) -> Completion:
    ids = torch.zeros(tokens, dtype=torch.long)
    return Completion(agent, "p", "x" * tokens, torch.tensor([1]), ids, torch.zeros(tokens), "eos")


def test_advantages_are_not_scaled_and_the_loss_divides_by_a_constant(
    drgrpo: Any, tmp_path: Path
) -> None:
    agents = ["left_0", "right_1"]
    config = drgrpo.DrGRPOConfig(
        env="digits_v0", num_generations=3, max_new_tokens=8, output_dir=str(tmp_path)
    )
    trainer = drgrpo.DrGRPOTrainer(config, team=LinearTeam(agents))
    lengths = {"left_0": [2, 4, 3], "right_1": [6, 2, 1]}
    tree = Node(0, tuple(agents), dict.fromkeys(agents, "p"), env=None)
    tree.samples = {a: [_completion(a, t) for t in lengths[a]] for a in agents}
    tree.joints = [
        Joint((g, g), dict.fromkeys(agents, r), r, {}, done=True)
        for g, r in enumerate([1.0, 0.0, 0.5])
    ]
    (credit,) = trainer.credit([tree])

    # Returns 1, 0, 0.5 minus their mean 0.5; their std (0.41) would make them +-1.22.
    for group in credit.groups:
        assert group.advantages.tolist() == pytest.approx([0.5, -0.5, 0.0])

    stats = trainer.loss(credit, 1.0)
    # Agent a: (1 / (G * L)) * sum_g A_g * T_g * theta_a with G = 3, L = 8, theta_a = 1:
    # left (0.5 * 2 - 0.5 * 4) / 24 = -1/24, right (0.5 * 6 - 0.5 * 2) / 24 = 2/24.
    assert stats.loss == pytest.approx(-1 / 24 + 2 / 24)
    assert stats.tokens == 9 + 9
    assert float(trainer.team.theta["left_0"].grad) == pytest.approx(-1 / 24)
    assert float(trainer.team.theta["right_1"].grad) == pytest.approx(2 / 24)
