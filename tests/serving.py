"""A real OpenAI-compatible server for tests: ``transformers serve`` of the tiny model.

It listens on 127.0.0.1 at a free port picked at run time (so two copies of the suite can run
at once), serves a local folder offline, and is stopped when the test session ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(url: str, server: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"transformers serve exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"transformers serve did not answer {url}/health in {timeout_s} s")


@contextmanager
def serve_tiny_model(folder: Path) -> Iterator[tuple[str, str]]:
    """``(base_url, model)`` of a live ``transformers serve`` of the tiny model in ``folder``."""
    from llm_marl.models.tiny import TinyLlamaSpec, tiny_llama

    # Long enough for the envs' prompts (RoPE: the limit is only the config's).
    model, tokenizer = tiny_llama(TinyLlamaSpec(max_position_embeddings=8192))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    port = free_port()
    log = folder / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            _wait_until_healthy(url, process, timeout_s=180)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}; its log:\n{log.read_text()[-3000:]}") from error
        yield f"{url}/v1", str(folder)
    finally:
        process.terminate()
        process.wait(timeout=30)
