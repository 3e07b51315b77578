"""llm-marl: environments and baselines for LLM agents that learn to collaborate.

``llm_marl.make(env_id)`` builds a PettingZoo parallel env; ``llm_marl.list_envs()`` lists the
ids. Importing this package needs only pettingzoo, gymnasium and numpy (never torch).
"""

from llm_marl.env_base import CollaborativeTextEnv
from llm_marl.episode import Outcome, Task, TurnRecord
from llm_marl.registry import EnvSpec, list_envs, make, register, spec

__version__ = "0.1.0"

__all__ = [
    "CollaborativeTextEnv",
    "EnvSpec",
    "Outcome",
    "Task",
    "TurnRecord",
    "__version__",
    "list_envs",
    "make",
    "register",
    "spec",
]
