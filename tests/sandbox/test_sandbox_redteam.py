"""The red-team review's attacks (findings 1-11), each one now failing safe.

Every test checks that the attack passes nothing it should not, that the host is unharmed
(``clean_host``: no process of the program survives, no child leaked) and that the next
correct run is still correct.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import descendants, sandbox_uid_processes

from llm_marl.sandbox import isolation, run_tests
from llm_marl.sandbox.records import Records as _Records

pytestmark = pytest.mark.usefixtures("clean_host")
TESTS = ["assert f(1) == 1", "assert f(2) == 4"]
RIGHT = "def f(x):\n    return x * x\n"
WRONG = "def f(x):\n    return 0\n"


def attack(program: str, tests: list[str] = TESTS, **kwargs: object) -> None:
    """The attack passes nothing; a correct program right after passes everything."""
    result = run_tests(program, tests, **kwargs)  # type: ignore[arg-type]
    assert result.passed == 0, result
    assert run_tests(RIGHT, TESTS).per_test == [True, True]


@pytest.mark.parametrize(
    ("program", "tests"),
    [
        ("def abs(x):\n    return 0\n" + WRONG, ["assert abs(f(1) - 0.5) < 1e-6"]),
        (
            "import builtins\nbuiltins.abs = lambda x: 0\n" + WRONG,
            ["assert abs(f(1) - 0.5) < 1e-6"],
        ),
        (
            "import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
            ["import math\nassert math.isclose(f(1), 0.5)"],
        ),
        (
            "__builtins__ = dict(vars(__builtins__), abs=lambda x: 0, all=lambda x: True)\n"
            + WRONG,
            ["assert abs(f(1) - 0.5) < 1e-6", "assert all(f(i) == i for i in range(3))"],
        ),
        (
            "import sys, types\nm = types.ModuleType('math')\nm.isclose = lambda *a, **k: True\n"
            "sys.modules['math'] = m\n" + WRONG,
            ["import math\nassert math.isclose(f(1), 0.5)"],
        ),
    ],
    ids=["def-abs", "builtins-abs", "math-isclose", "dunder-builtins", "sys-modules"],
)
def test_finding_1_shadowed_builtins_and_modules_do_not_reach_the_test(
    program: str, tests: list[str]
) -> None:
    attack(program, tests)


@pytest.mark.parametrize(
    "program",
    [
        "import sys\nsys._getframe(1).f_globals['_bool'] = lambda v: True\n" + WRONG,
        "import sys, os\nn = sys._getframe(1).f_locals['payload']['nonce']\n"
        "for i in range(50):\n    os.write(3, f'{n} pass {i}\\n'.encode())\n" + WRONG,
        "import gc\nfor o in gc.get_objects():\n    if callable(o) and 'record' in "
        "getattr(o, '__qualname__', ''):\n        o('pass', '0'); o('pass', '1')\n" + WRONG,
        "import sys\ndef tr(frame, event, arg):\n    frame.f_globals['assert_ok'] = True\n"
        "sys.settrace(tr)\n" + WRONG,
        "import sys\ndef f(x):\n    fr = sys._getframe(1)\n    while fr.f_back:\n"
        "        fr = fr.f_back\n    return fr.f_code.co_consts[-1]\n",
        "import os\nfor fd in range(3, 20):\n    try:\n"
        "        os.write(fd, b'0' * 32 + b' pass 0\\n')\n"
        "    except OSError:\n        pass\n" + WRONG,
    ],
    ids=["frame-guard-swap", "nonce-from-frame", "gc-record", "settrace", "code-consts", "fds"],
)
def test_finding_2_the_harness_is_out_of_the_programs_reach(program: str) -> None:
    attack(program)


def test_finding_2_nonce_and_evaluator_memory_are_unreachable() -> None:
    """/proc/<pid>/mem of the program's own process has no nonce; the evaluator's is closed."""
    program = (
        "import os\nfound = []\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n"
        "        try:\n            open(f'/proc/{pid}/mem', 'rb').read(1)\n"
        "            found.append(pid)\n        except OSError:\n            pass\n"
        "def f(x):\n    return found\n"
    )
    result = run_tests(program, ["assert f(0) == []"])
    assert result.per_test == [True], result  # not even its own: it is not dumpable


def test_finding_3_forked_answers_and_failure_oracles_do_not_brute_force() -> None:
    """Each fork answers a different guess, the right one last; hooks that exit on a failed
    assert see nothing (the asserts run elsewhere). Only the first answer counts."""
    program = textwrap.dedent(
        """
        import os, sys, time
        class Hook:
            def flush(self):
                if sys.exc_info()[0] is not None:
                    os._exit(1)
            def write(self, s):
                return len(s)
        sys.__stdout__ = Hook()
        sys.addaudithook(lambda event, args: None)
        def f(x):
            for guess in [g for g in range(10) if g != x * x] + [x * x]:
                if os.fork() == 0:
                    if guess == x * x:
                        time.sleep(0.3)
                    return guess
            time.sleep(5)
            os._exit(1)
        """
    )
    attack(program, timeout_s=2)


def test_finding_4_forged_or_huge_record_indexes_never_raise() -> None:
    records = _Records(2)
    for line in ("n pass \u00b2", "n pass " + "9" * 5000, "n pass 2", "n pass -1", "n pass 1 x"):
        records.add(line, "n")
    records.add("n fail 0 AssertionError", "n")
    records.add("n pass 0", "n")  # a second verdict for the same test is ignored
    assert records.outcomes == {0: ("fail", "AssertionError")}


def test_finding_4_a_program_filling_its_process_limit_does_not_poison_the_slot() -> None:
    program = (
        "import os, time\nfor i in range(80):\n    try:\n        if os.fork() == 0:\n"
        "            time.sleep(100)\n            os._exit(0)\n    except OSError:\n        break\n"
        + WRONG
    )
    for _ in range(3):
        attack(program, timeout_s=1)


def test_finding_5_a_run_is_bounded_even_when_the_program_keeps_busy() -> None:
    program = (
        "import os, time\nwhile True:\n    os.write(1, b'ended 0 x\\n')\n    time.sleep(0.2)\n"
    )
    start = time.monotonic()
    result = run_tests(program, TESTS, timeout_s=1)
    assert result.status == "timeout" and result.passed == 0
    assert time.monotonic() - start < 5


def test_finding_6_the_program_dies_with_its_caller() -> None:
    """SIGKILL the caller mid-run: the zygote sees EOF and kills the program's supervisor."""
    script = (
        "from llm_marl.sandbox import run_tests\n"
        "run_tests('import time\\nwhile True:\\n    time.sleep(1)\\n', ['assert True'], 30)\n"
    )
    caller = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    end, program = time.monotonic() + 20, set()  # the caller's own: not another suite's
    while time.monotonic() < end and not program:
        program = set(sandbox_uid_processes(descendants(caller.pid)))
        time.sleep(0.05)
    assert program, "the program never started"
    os.killpg(caller.pid, signal.SIGKILL)
    caller.wait()
    end = time.monotonic() + 10
    while time.monotonic() < end and program & set(sandbox_uid_processes()):
        time.sleep(0.05)
    assert not program & set(sandbox_uid_processes())


def test_finding_7_processes_are_limited_to_sixteen() -> None:
    program = (
        "import os, time\ncount = 0\nfor i in range(40):\n    try:\n        if os.fork() == 0:\n"
        "            time.sleep(100)\n            os._exit(0)\n        count += 1\n"
        "    except OSError:\n        break\nraise ValueError(count)\n"
    )
    if not isolation().separate_uid:
        pytest.skip("the limit is per uid")
    result = run_tests(program, TESTS, timeout_s=2)
    assert result.status == "load_error" and result.error is not None
    assert int(result.error.split()[1]) < 16  # "ValueError: <count> (program line 9)"


def test_finding_8_data_sets_and_the_repository_are_not_visible() -> None:
    if not isolation().host_filesystem.startswith("hidden"):
        pytest.skip("no minimal root in this mode")
    import llm_marl

    repo = os.path.dirname(os.path.dirname(llm_marl.__file__))
    paths = [repo, sys.prefix, "/etc/passwd", "/home", "/work"]
    program = f"import os\ndef f(x):\n    return [os.path.exists(p) for p in {paths!r}]\n"
    assert run_tests(program, [f"assert f(0) == {[False] * len(paths)}"]).per_test == [True]


def test_finding_9_kernel_keyrings_are_closed() -> None:
    program = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "nr = {'x86_64': 248, 'aarch64': 217}.get(os.uname().machine)\n"
        "r = libc.syscall(nr, b'user', b'k', b'v', 1, ctypes.c_int(-4)) if nr else -1\n"
        "def f(x):\n    return r\n"
    )
    assert run_tests(program, ["assert f(0) == -1"]).per_test == [True]


@pytest.mark.parametrize(
    ("program", "test"),
    [
        (
            "class A:\n    def __len__(s): return 3\ndef f(x):\n    return A()\n",
            "assert len(f(1)) == 3",
        ),
        (
            "class A:\n    __class__ = property(lambda s: bool)\ndef f(x):\n    return A()\n",
            "assert isinstance(f(1), bool)",
        ),
        (
            "class I(int):\n    def __eq__(s, o): return True\n    __hash__ = int.__hash__\n"
            "def f(x):\n    return I(0)\n",
            "assert f(1) == 1",
        ),
    ],
    ids=["len", "class-property", "int-subclass"],
)
def test_finding_10_program_objects_never_reach_the_test(program: str, test: str) -> None:
    attack(program, [test, test])


def test_finding_11_asserts_survive_python_dash_o() -> None:
    script = (
        "from llm_marl.sandbox import run_tests\n"
        "r = run_tests('def f(x):\\n    return 0\\n', ['assert f(1) == 1'])\n"
        "assert r.per_test == [False], r\n"
    )
    subprocess.run([sys.executable, "-O", "-c", script], check=True, timeout=60)


def test_trusted_context_wins_over_the_program() -> None:
    """A HumanEval-style helper in the context is the test's; the program's copy is not."""
    context = (
        "def poly(xs, x):\n    return sum(c * x**i for i, c in enumerate(xs))\ncandidate = f\n"
    )
    program = "def poly(xs, x):\n    return 0\ndef f(xs):\n    return 5.0\n"
    result = run_tests(
        program, ["assert abs(poly([1, 2], candidate([1, 2]))) < 1e-6"], context=context
    )
    assert result.per_test == [False]
    assert result.per_test_errors == ["AssertionError (test line 1)"]


# ---------------------------------------------------------------- second review


@pytest.mark.parametrize(
    "test",
    [
        "assert all(map(lambda x: f(x) == x * x, range(1, 4)))",
        "assert list(map(f, [1, 2])) == []",
        "assert not any(map(lambda x: f(x) != x * x, [2, 3]))",
    ],
)
def test_a_program_stop_iteration_does_not_end_a_tests_iteration(test: str) -> None:
    """A StopIteration raised by the program reaches the test as a RuntimeError, so it
    cannot silently empty a ``map`` and make ``all``/``== []`` hold."""
    attack("def f(x):\n    raise StopIteration\n", [test])


@pytest.mark.parametrize("name", ["unittest.__main__", "venv", "antigravity", "this"])
def test_the_program_cannot_choose_code_for_the_evaluator_to_import(name: str) -> None:
    """A fake module object named after a stdlib script is refused, not imported in E."""
    program = f"import sys\nf = type(sys)({name!r})\n"
    result = run_tests(program, ["assert f is not None"])
    assert result.per_test == [False]
    assert "is not plain data: module" in (result.per_test_errors[0] or "")


def test_a_stdlib_module_the_program_imported_is_the_evaluators_own() -> None:
    """``math`` in a test is E's own copy even if the program patched its own."""
    program = "import math\nmath.sqrt = lambda x: 3.0\ndef f(x):\n    return math.sqrt(x)\n"
    result = run_tests(program, ["assert math.sqrt(4) == 2.0", "assert f(4) == 2.0"])
    assert result.per_test == [True, False]


# ---------------------------------------------------------------- third review

EARLY_ANSWER = """
import marshal, os, time
def f(x):
    frame = marshal.dumps(("ok", x * x))
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd"))[3:]:
        try:
            os.write(fd, len(frame).to_bytes(4, "big") + frame)
        except OSError:
            pass
    time.sleep(0.1)
    return 0
"""


def test_an_early_or_late_answer_is_never_taken_for_another_request() -> None:
    """Each request carries a random tag its answer must echo: an answer written ahead of
    time (here the right one, untagged) or one arriving after its test fails, and is never
    read as the answer to the next request."""
    result = run_tests(EARLY_ANSWER, TESTS)
    assert result.per_test == [False, False]
    assert all("ProtocolError" in (error or "") for error in result.per_test_errors)
    assert run_tests(RIGHT, TESTS).per_test == [True, True]
