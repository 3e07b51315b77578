"""The environment suite: collaborative writing and coding tasks for LLM teams.

Writing: ``tldr_v0``, ``arxiv_v0`` (two writers, shared source document). Coding:
``humaneval_v0``, ``coophumaneval_v0`` (a helper writes ``aux``, main writes the entry point;
tests run in :mod:`llm_marl.sandbox`). Each module is one env in PettingZoo's shape
(``parallel_env``, ``raw_env``, ``env``) and its docstring is its documentation page.
Importing this package registers them with :func:`llm_marl.make`; it does not import torch.
"""

from llm_marl.registry import register

# override=True keeps importlib.reload(llm_marl.envs) working.
register("tldr_v0", "llm_marl.envs.tldr_v0:parallel_env", override=True)
register("arxiv_v0", "llm_marl.envs.arxiv_v0:parallel_env", override=True)
register("humaneval_v0", "llm_marl.envs.humaneval_v0:parallel_env", override=True)
register("coophumaneval_v0", "llm_marl.envs.coophumaneval_v0:parallel_env", override=True)
