"""``llm-marl eval``: score a base model or a trained team on an env's held-out tasks.

Examples::

    llm-marl eval --env tldr_v0 --protocol sequential --model embedded --samples 4
    llm-marl eval --env coophumaneval_v0 --checkpoint runs/magrpo-coophumaneval_v0-seed0 --k 1,3
    llm-marl eval --env tldr_v0 --checkpoint runs/A --seat detailed_1=runs/B   # cross-play
    llm-marl eval --env tldr_v0 --checkpoint runs/A --seat concise_0=empty     # leave one out

It prints one row per seed (and their mean) and writes every task's samples and scores as
JSON (``--output``).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_marl.baselines.cli import _message, one_line_warnings
from llm_marl.baselines.eval_run import EvalSettings, evaluate_cell, protocol_env, team_folder
from llm_marl.baselines.protocols import PROTOCOLS, Seat, seats_for
from llm_marl.cli import text_table
from llm_marl.cli_parser import CLIParser, report

__all__ = ["build_eval_parser", "eval_main", "parse_ints"]

PROG = "llm-marl eval"
EMPTY, BASE = "empty", "base"


def parse_ints(text: str, name: str = "value") -> tuple[int, ...]:
    """``"1,3,5"`` as ``(1, 3, 5)``; a ``ValueError`` naming ``name`` otherwise."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"{name} must be comma-separated integers such as 1,3,5, got {text!r}"
        ) from None
    if not values:
        raise ValueError(f"{name} must name at least one integer, got {text!r}")
    return values


def build_eval_parser() -> CLIParser:
    """The parser of ``llm-marl eval``."""
    parser = CLIParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--env", default="tldr_v0", help="registered env id (default tldr_v0)")
    add("--env-kwargs", default="{}", metavar="JSON", help="extra env options as a JSON object")
    add(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="how the agents interact: single, parallel, sequential or discussion (default: "
        "parallel; for a checkpoint, how it was trained)",
    )
    add("--model", default=None, help="base model: embedded (default), tiny, a folder, a hub id")
    add(
        "--checkpoint",
        default=None,
        metavar="DIR",
        help="a trained team: a run folder, one of its checkpoints or a saved team folder",
    )
    add(
        "--seat",
        action="append",
        default=[],
        metavar="AGENT=SOURCE",
        help="who answers for AGENT: 'base' (the untrained model), 'empty' (no answer: leave "
        "one agent out) or another run/checkpoint folder (cross-play); repeatable",
    )
    add("--num-turns", type=int, default=None, help="turns per episode (default: as trained, or 1)")
    add("--samples", type=int, default=4, help="episodes per task, the n of pass@k (default 4)")
    add("--k", default="1", help="the k of pass@k and accuracy@k, comma-separated (default 1)")
    add("--seeds", default="0", help="sampling seeds, comma-separated (default 0)")
    add("--tasks", type=int, default=None, help="the first N test tasks (default: all)")
    add("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    add("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    add("--max-new-tokens", type=int, default=256, help="longest answer in tokens (default 256)")
    add("--batch-size", type=int, default=None, help="most sequences per generate call")
    add("--dtype", default=None, help="torch dtype of the weights (default float32)")
    add("--device", default=None, help="torch device (default CUDA when available)")
    add(
        "--output",
        default=None,
        metavar="FILE",
        help="JSON results (default eval-ENV-PROTOCOL.json)",
    )
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


def eval_main(argv: Sequence[str]) -> int:
    """Run ``llm-marl eval``; errors in the settings, model or env are one line, exit 2."""
    args = build_eval_parser().parse_args(argv)
    with one_line_warnings(PROG):
        try:
            results = _run(args)
        except (ValueError, TypeError, OSError, KeyError, ImportError, RuntimeError) as error:
            return report(PROG, _message(error))
    path = Path(args.output or f"eval-{args.env}-{results['protocol']}.json")
    path.write_text(json.dumps(results, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    print(_summary_table(results))
    print(f"results: {path}")
    return 0


def _run(args: Any) -> dict[str, Any]:
    from llm_marl.models import load_policy

    if args.model is not None and args.checkpoint is not None:
        raise ValueError("give --model (a base model) or --checkpoint (a trained team), not both")
    env_kwargs = json.loads(args.env_kwargs)
    if not isinstance(env_kwargs, dict):
        raise ValueError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    ks, seeds = parse_ints(args.k, "--k"), parse_ints(args.seeds, "--seeds")
    load = {"dtype": args.dtype, "device": args.device}
    if args.checkpoint is not None:
        source = str(team_folder(args.checkpoint))
        team = load_policy(source, **load)
        num_turns = args.num_turns or _trained_turns(Path(source))
    else:
        source = args.model or "embedded"
        team = load_policy(source, **load)
        num_turns = args.num_turns or 1
    protocol = args.protocol or _native_protocol(args.env, env_kwargs, team)
    env = protocol_env(args.env, protocol, env_kwargs=env_kwargs, num_turns=num_turns)
    seats = seats_for(team, env.possible_agents)
    seats.update(_extra_seats(args.seat, env.possible_agents, team, load))
    cells = []
    for seed in seeds:
        settings = EvalSettings(
            samples=args.samples,
            ks=ks,
            num_tasks=args.tasks,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            seed=seed,
        )
        label = None if args.no_progress else f"eval {args.env} {protocol} seed {seed}"
        cell = evaluate_cell(env, seats, protocol, settings, progress=label)
        cells.append({"seed": seed, **cell})
    names = list(cells[0]["metrics"])
    mean = {n: statistics.fmean(c["metrics"][n] for c in cells) for n in names}
    return {
        "env": args.env,
        "protocol": protocol,
        "model": source,
        "seats": _seat_names(args.seat),
        "num_turns": num_turns,
        "seeds": cells,
        "mean": mean,
    }


def _trained_turns(team_dir: Path) -> int:
    """The turns per episode a saved team was trained with (its run's ``config.yaml``), or 1."""
    from llm_marl.baselines.cli import read_config_file

    for folder in (team_dir, *list(team_dir.parents)[:3]):
        config = folder / "config.yaml"
        if config.is_file():
            return int(read_config_file(config).get("num_turns", 1))
    return 1


def _native_protocol(env_id: str, env_kwargs: dict[str, Any], team: Any) -> str:
    """``single`` for a one-agent team named like the env's single-agent view (a GRPO run),
    else ``parallel``."""
    import llm_marl

    if len(team.agents) == 1:
        try:
            solo = llm_marl.make(env_id, **{**env_kwargs, "single_agent": True})
        except (TypeError, ValueError):
            return "parallel"
        if list(solo.possible_agents) == list(team.agents):
            return "single"
    return "parallel"


def _seat_names(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        agent, sep, source = spec.partition("=")
        if not sep or not agent or not source:
            raise ValueError(f"--seat takes AGENT=SOURCE (base, empty or a folder), got {spec!r}")
        out[agent] = source
    return out


def _extra_seats(
    specs: Sequence[str], agents: Sequence[str], team: Any, load: dict[str, Any]
) -> dict[str, Seat]:
    from llm_marl.models import load_policy

    seats: dict[str, Seat] = {}
    base: Any = None
    for agent, source in _seat_names(specs).items():
        if agent not in agents:
            raise ValueError(f"--seat names agent {agent!r}; the env's agents are {list(agents)}")
        if source == EMPTY:
            seats[agent] = Seat(None)
            continue
        if source == BASE:
            base = base or load_policy(_base_model(team), **load)
            seats[agent] = Seat(base, base.agents[0])
            continue
        other = load_policy(str(team_folder(source)), **load)
        seats[agent] = seats_for(other, agents)[agent]
    return seats


def _base_model(team: Any) -> str:
    """The base model a team was built on (its manifest's base, else its source)."""
    return str(getattr(team, "source", "embedded"))


def _summary_table(results: dict[str, Any]) -> str:
    cells = results["seeds"]
    names = [n for n in cells[0]["metrics"] if n != "sandbox_error_episodes"]
    rows = [[f"seed {c['seed']}", *(_fmt(c["metrics"][n]) for n in names)] for c in cells]
    if len(cells) > 1:
        rows.append(["mean", *(_fmt(results["mean"][n]) for n in names)])
    title = (
        f"{results['env']} · {results['protocol']} · {results['model']} · "
        f"{cells[0]['samples']} samples x {len(cells[0]['tasks'])} tasks"
    )
    return title + "\n" + text_table(["", *names], rows)


def _fmt(value: float) -> str:
    return "nan" if value != value else f"{value:.3f}"
