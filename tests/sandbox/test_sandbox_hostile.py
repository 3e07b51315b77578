"""One hostile program per threat class: nothing that should fail passes; the host is unharmed.

Every test uses the ``clean_host`` fixture: afterwards no process of the program survives
(slot uids scanned in /proc) and this process has no extra children.
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from conftest import processes_named

from llm_marl.sandbox import isolation, run_tests

pytestmark = pytest.mark.usefixtures("clean_host")
GOOD = "def main(x):\n    return x + 1\n"
LEGIT = "assert main(1) == 2"


def test_infinite_loop_at_top_level_times_out_within_its_budget() -> None:
    start = time.monotonic()
    result = run_tests(GOOD + "while True:\n    pass\n", [LEGIT], timeout_s=1)
    assert result.status == "timeout" and result.per_test == [False]
    assert time.monotonic() - start < 15  # STARTUP_S + timeout_s + slack


def test_infinite_loop_or_sleep_in_a_test_fails_only_that_test() -> None:
    tests = [LEGIT, "while True:\n    pass", "import time; time.sleep(100)", LEGIT]
    result = run_tests(GOOD, tests, timeout_s=1)
    assert result.per_test == [True, False, False, True] and result.status == "timeout"
    assert result.per_test_errors[1] == "Timeout: the test ran over 1 s"


def test_fork_bomb_is_contained_and_leaves_nothing(marker: str) -> None:
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    result = run_tests(GOOD, [LEGIT, bomb, LEGIT], timeout_s=2)
    assert result.per_test == [True, False, True]


def test_memory_hog_fails_with_memory_error() -> None:
    tests = ["x = bytearray(8 << 30)", "x = [0] * (4 << 30)", LEGIT]
    result = run_tests(GOOD, tests, memory_mb=256)
    assert result.per_test == [False, False, True]
    assert result.per_test_errors[0].startswith("MemoryError")


def test_output_flood_is_bounded_and_does_not_block() -> None:
    flood = "import os\nfor _ in range(20000):\n    os.write(1, b'x' * 65536)\nassert False"
    rss_before = _rss_kib()
    result = run_tests(GOOD, [flood, "print('y' * 10**8)", LEGIT], timeout_s=20)
    assert result.per_test == [False, True, True]  # printing is not failing
    assert len(result.output) <= 8192
    assert _rss_kib() - rss_before < 64 * 1024  # 1.3 GB went through; we kept kilobytes


def test_huge_files_hit_the_file_size_limit() -> None:
    big = "with open('big', 'wb') as f:\n    f.write(b'x' * (64 << 20))"
    result = run_tests(GOOD, [big, LEGIT])
    assert result.per_test == [False, True]
    assert "File too large" in result.per_test_errors[0]


def test_host_files_cannot_be_changed_deleted_or_created(canary: Path) -> None:
    """A world-readable host file and its directory stay exactly as they were; as root the
    program does not even see them (minimal root), from its top level, its functions or the
    tests."""
    if not isolation().separate_uid:
        pytest.skip("without a separate uid the program can write the caller's own files")
    actions = [
        f"import os; os.remove({str(canary)!r})",
        f"open({str(canary)!r}, 'w').write('owned')",
        f"open({str(canary.parent / 'new.txt')!r}, 'w').write('x')",
        "import shutil; shutil.rmtree('/work', ignore_errors=False)",
    ]
    program = GOOD + "".join(f"def act{i}():\n    {a}\n" for i, a in enumerate(actions))
    tests = [*actions, *(f"act{i}()" for i in range(len(actions)))]
    reading = f"assert open({str(canary)!r}).read() == 'untouched'"
    result = run_tests(program, [*tests, reading, LEGIT])
    visible = not isolation().host_filesystem.startswith("hidden")
    assert result.per_test == [False] * len(tests) + [visible, True]
    guarded = "\n".join(f"try:\n    {a}\nexcept OSError:\n    pass" for a in actions)
    top = run_tests(GOOD + guarded, [LEGIT])
    assert top.per_test == [True]


def test_temp_files_are_private_and_thrown_away() -> None:
    """/tmp and the working directory are a private tmpfs: nothing lands on the host."""
    if not isolation().mount_namespace:
        pytest.skip("no mount namespace")
    name = f"llm-marl-sandbox-leak-{os.getpid()}"
    tests = [
        f"open('/tmp/{name}', 'w').write('x')",
        f"open('/dev/shm/{name}', 'w').write('x')",
        f"open('/var/tmp/{name}', 'w').write('x')",
    ]
    assert run_tests(GOOD, tests).per_test == [True] * 3
    for directory in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not Path(directory, name).exists()


def test_secrets_of_the_host_stay_out_of_reach(tmp_path: Path) -> None:
    """The caller's environment is not inherited; root's home is hidden."""
    os.environ["LLM_MARL_SANDBOX_TEST_SECRET"] = "hunter2"
    secret = Path.home() / f".llm_marl_sandbox_secret_{os.getpid()}"
    secret.write_text("hunter2")
    try:
        tests = [
            "import os; assert 'hunter2' in str(os.environ)",
            f"assert open({str(secret)!r}).read() == 'hunter2'",
            "import os; assert sorted(os.environ) == ['LC_ALL', 'PATH', 'PYTHONHASHSEED']",
        ]
        result = run_tests(GOOD, tests)
    finally:
        secret.unlink()
        del os.environ["LLM_MARL_SANDBOX_TEST_SECRET"]
    assert result.per_test[0] is False and result.per_test[2] is True
    if isolation().separate_uid:
        assert result.per_test[1] is False


def test_no_network() -> None:
    """A socket listening on the host's loopback cannot be reached; no route outside."""
    if not isolation().net_namespace:
        pytest.skip("no network namespace")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        tests = [
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)",
            "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)",
        ]
        assert run_tests(GOOD, tests).per_test == [False, False]


def test_killing_the_parent_or_its_group_harms_no_one() -> None:
    """os.kill(getppid), killpg, kill(-1) in a test or in the program: the failing assert after
    them still fails, the coordinator survives (root, pid 1 of its namespace), the caller and
    zygote live on."""
    kills = [
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.killpg(os.getpgid(0), signal.SIGKILL)",
        "os.kill(-1, signal.SIGKILL)",
    ]
    tests = [f"import os, signal\n{kill}\nassert main(1) == 5" for kill in kills]
    result = run_tests(GOOD, [*tests, LEGIT])
    assert result.per_test == [False, False, False, True]
    top = run_tests(GOOD + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", [LEGIT])
    if isolation().separate_uid:  # the coordinator runs as root: not the program's to kill
        assert top.status == "load_error" and top.error.startswith("PermissionError")
    assert run_tests(GOOD, [LEGIT]).per_test == [True]  # the zygote still serves


@pytest.mark.parametrize(
    "exit_call",
    [
        "import sys; sys.exit(0)",
        "import os; os._exit(0)",
        "raise SystemExit(0)",
        "raise KeyboardInterrupt",
        "import os, signal; os.kill(os.getpid(), 9)",
    ],
)
def test_exiting_early_passes_nothing(exit_call: str) -> None:
    program = GOOD + f"def sneaky(x):\n    {exit_call}\n"
    result = run_tests(program, ["assert sneaky(1) == 5", LEGIT])
    assert result.per_test == [False, True]
    if "os.kill" not in exit_call:  # at top level, pid 1 of the namespace ignores it
        top = run_tests(GOOD + exit_call + "\n", [LEGIT])
        assert top.per_test == [False] and top.status in ("load_error", "crashed")


def test_fake_pass_lines_on_stdout_or_the_record_fd_pass_nothing() -> None:
    """Verdict records need the per-run nonce; printing or writing guesses counts for nothing."""
    forge = (
        "import os\nprint('pass 0\\nPASS\\nok')\nfor fd in range(3, 10):\n"
        "    try:\n        os.write(fd, b'pass 0\\nx pass 0\\n0 pass 0\\nloaded\\ndone\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)"
    )
    result = run_tests(GOOD, [forge])
    assert result.per_test == [False]


def test_monkeypatched_builtins_do_not_turn_failures_into_passes() -> None:
    program = GOOD + (
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
        "builtins.isinstance = lambda *a: True\nbuiltins.bool = lambda *a: True\n"
        "builtins.type = lambda *a: int\nbuiltins.hasattr = lambda *a: True\n"
        "import operator\noperator.eq = lambda a, b: True\n"
    )
    result = run_tests(program, ["assert main(1) == 5", "assert main(1) != 2", LEGIT])
    assert result.per_test == [False, False, True]


def test_always_equal_and_forged_dunders_are_rejected() -> None:
    program = GOOD + (
        "class AlwaysEqual:\n    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n    def __bool__(self): return True\n"
        "    def __sub__(self, other): return 0.0\n    def __abs__(self): return 0.0\n"
        "    def __lt__(self, other): return True\n    __hash__ = object.__hash__\n"
        "class S(str):\n    def __eq__(self, other): return True\n"
        "def cheat(*args):\n    return AlwaysEqual()\n"
        "def cheat_str(*args):\n    return S('nope')\n"
    )
    tests = [
        "assert cheat(1) == 5",
        "assert cheat(1)",
        "assert abs(cheat(1) - 5) < 1e-6",
        "assert cheat_str(1) == 'yes'",
        "assert [cheat(1)] == [5]",
        "assert abs(cheat(1)) < 1",
        "assert not cheat(1) != 5",
        "assert all(x == 1 for x in [cheat(1)])",
        "assert cheat(1) < 0",
        "assert all([cheat(1)])",
        "assert bool(cheat(1))",
        LEGIT,
    ]
    result = run_tests(program, tests)
    assert result.per_test == [False] * 11 + [True]
    assert result.per_test_errors[0] == (
        "TypeError: result of cheat(...) is not plain data: AlwaysEqual"
    )


def test_background_processes_do_not_outlive_the_run() -> None:
    """Double fork + setsid + a long sleep, from the top level and from a test: the daemons
    exist during the run (the first test sees them) and are gone when run_tests returns."""
    name = f"lm{uuid.uuid4().hex[:13]}"  # a process name (comm) holds at most 15 characters
    daemon = (
        "import ctypes, os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        ctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)  # PR_SET_NAME\n"
        "        time.sleep(300)\n    os._exit(0)\nos.wait()\n"
    )
    seen = (
        "import os, time\nfor _ in range(100):\n    names = []\n"
        "    for pid in filter(str.isdigit, os.listdir('/proc')):\n        try:\n"
        "            names.append(open(f'/proc/{pid}/comm').read().strip())\n"
        "        except OSError:\n            pass\n"
        f"    if names.count({name!r}) >= count:\n        break\n    time.sleep(0.05)\n"
        f"assert names.count({name!r}) >= count, names"
    )
    program = GOOD + "def spawn():\n" + textwrap.indent(daemon, "    ") + "    return 1\n"
    result = run_tests(
        program + "spawn()\n",
        ["count = 1\n" + seen, "assert spawn() == 1", "count = 2\n" + seen, LEGIT],
    )
    assert result.per_test == [True] * 4, result  # spawning is allowed; surviving is not
    assert processes_named(name) == []


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
