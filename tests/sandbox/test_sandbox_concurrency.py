"""Many programs at once: a hostile one does not affect the others; nothing leaks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from llm_marl.sandbox import run_tests

pytestmark = pytest.mark.usefixtures("clean_host")
HOSTILE = [
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
    "import os\nwhile True:\n    os.write(1, b'y' * 65536)\n",
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=["fork_bomb", "memory", "flood"])
def test_sixteen_programs_in_a_pool_with_one_hostile(hostile: str) -> None:
    """15 honest programs pass all tests while a fork bomb/memory hog/flood runs beside them."""
    honest = [
        (
            f"def main(x):\n    return x * {k}\n",
            [f"assert main(2) == {2 * k}", f"for i in range(50):\n    assert main(i) == i * {k}"],
        )
        for k in range(15)
    ]
    jobs = [
        *honest[:7],
        ("def main(x):\n    return x\n", [hostile, "assert main(1) == 1"]),
        *honest[7:],
    ]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda job: run_tests(*job, timeout_s=3), jobs))
    bad = results.pop(7)
    assert bad.per_test[0] is False
    assert [r.per_test for r in results] == [[True, True]] * 15
    assert all(r.status == "ok" for r in results)
