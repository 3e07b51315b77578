"""The OpenAI-compatible policy against a real server: ``transformers serve`` of the tiny
model on 127.0.0.1 (the session's ``tiny_server``), no mocks."""

from __future__ import annotations

import time

import pytest
from serving import free_port

from llm_marl.models import Completion, OpenAITeam, SamplingConfig, load_policy

PROMPT = "Summarise: the cat sat on the mat."


@pytest.fixture(scope="module")
def served(tiny_server: tuple[str, str]) -> OpenAITeam:
    """A two-agent team on the served tiny model (its name found from ``/v1/models``)."""
    team = load_policy(f"openai:{tiny_server[0]}", agents=["writer_0", "writer_1"])
    assert isinstance(team, OpenAITeam)
    return team


@pytest.mark.parametrize("chat_template", [True, False])
def test_greedy_answers_match_the_local_model(
    served: OpenAITeam, tiny_server: tuple[str, str], chat_template: bool
) -> None:
    """Greedy text from the server equals HF's greedy text of the same weights, through the
    chat endpoint (the server applies the template) and the plain completions endpoint."""
    config = SamplingConfig(
        num_samples=1, temperature=0, max_new_tokens=8, chat_template=chat_template
    )
    local = load_policy(tiny_server[1], agents=["writer_0"])
    expected = local.generate([("writer_0", PROMPT)], config)[0][0].text
    (answer,) = served.generate([("writer_1", PROMPT)], config)[0]
    assert answer.text == expected
    assert (answer.agent, answer.prompt, answer.finish_reason) == ("writer_1", PROMPT, "length")


def test_every_request_gets_its_samples(served: OpenAITeam) -> None:
    """G completions per request, in request order (the server ignores ``n``: the client asks
    again for the rest)."""
    requests = [("writer_0", "first task"), ("writer_1", "second task"), ("writer_0", "third")]
    out = served.generate(requests, SamplingConfig(num_samples=3, max_new_tokens=4))
    assert [len(group) for group in out] == [3, 3, 3]
    for (agent, prompt), group in zip(requests, out, strict=True):
        for completion in group:
            assert isinstance(completion, Completion) and isinstance(completion.text, str)
            assert (completion.agent, completion.prompt) == (agent, prompt)
            assert completion.temperature == 0.8 and completion.token_ids.numel() == 0


def test_training_is_refused(served: OpenAITeam, tmp_path: object) -> None:
    """No loss, parameters or saving: each says the policy is served and what to do."""
    (completion,) = served.generate([("writer_0", PROMPT)], SamplingConfig(1, max_new_tokens=2))[0]
    calls = [
        lambda: served.logprobs([completion]),
        lambda: served.reference_logprobs([completion]),
        lambda: served.trainable_parameters("writer_0"),
        lambda: served.save_pretrained(str(tmp_path)),
    ]
    for call in calls:
        with pytest.raises(NotImplementedError, match=f"served policy at {served.base_url}"):
            call()
    assert served.num_parameters() == 0 and served.base_url in repr(served)


def test_a_server_that_is_down_is_named() -> None:
    """Nothing listening: one ConnectionError naming the URL, after the retries, quickly."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"no OpenAI-compatible server answers at {url}"):
        OpenAITeam(url, ["agent_0"], max_retries=1)
    assert time.monotonic() - start < 10


def test_bad_names_are_refused() -> None:
    """A URL without a scheme, or ``model=`` for a local model, names the fix."""
    with pytest.raises(ValueError, match="must start with http"):
        load_policy("openai:127.0.0.1:8000/v1")
    with pytest.raises(ValueError, match=r"pass its name first: load_policy\('tiny'\)"):
        load_policy(model="tiny")
