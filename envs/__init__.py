"""The environment suite: collaborative writing (and, later, coding) tasks for LLM teams.

Each module is one env in PettingZoo's shape (``parallel_env``, ``raw_env``, ``env``) and its
docstring is its documentation page. Importing this package registers them with
:func:`llm_marl.make`; it does not import torch.
"""

from llm_marl.registry import register

# override=True keeps importlib.reload(llm_marl.envs) working.
register("tldr_v0", "llm_marl.envs.tldr_v0:parallel_env", override=True)
register("arxiv_v0", "llm_marl.envs.arxiv_v0:parallel_env", override=True)
