"""Run generated programs against tests, treating every program as hostile.

```python
from llm_marl.sandbox import run_tests, isolation
r = run_tests(program, ["assert main(1) == 2", "for i in range(3):\\n    assert main(i) > i"],
              context="import math")  # trusted code run before each test
r.passed, r.total, r.status, r.per_test, r.per_test_errors, r.error
```

API: `run_tests` (one program), `run_many` (a thread pool of `run_tests`), `isolation` (what is
active), `split_check` (HumanEval ``check(candidate)`` -> independent tests), `SandboxResult`,
`Isolation`, `STATUSES`.

Threat model: a program may loop or sleep forever, fork-bomb, eat memory, flood stdout/stderr,
write huge files, delete/modify or read host files (data sets with answers included), read the
caller's environment, open sockets, kill its parent or process group, exit early, print fake
"PASS" lines, shadow or monkeypatch builtins and modules, introspect the harness (frames,
``gc``, ``sys.settrace``, /proc), fork to try several answers, return objects with forged
dunders, or leave background processes (double fork, setsid). Nothing that should fail may
pass, the host stays unharmed, no process is left behind, and concurrent programs do not affect
each other.

How (see `zygote`, `harness`, `evaluator`, `wire`, `compiling`, `runner`, `records`,
`spawner`, `capacity`, `arguments`):

- Verdicts in a trusted process: the coordinator ``D`` (pid 1 of the program's namespaces, never
  runs program code) forks an evaluator ``E`` that runs the tests one after another, and the
  program's loader ``L`` (which ran the program's top level once) forks a server ``U``. A test that
  times out, crashes or breaks the protocol fails alone: the next test gets a fresh server (forked
  again from the loaded program), and a stuck evaluator is replaced; between tests that end cleanly
  the server's state carries over, as in one ``check`` function. Each test runs in ``E`` with fresh
  globals and its own deadline: names of the trusted ``context`` (HumanEval prompt helpers,
  ``candidate = <entry_point>``), then E's own builtins, then the program's names through ``U``: a
  callable becomes a proxy whose call sends marshalled plain data and gets one plain-data answer
  (int, float, complex, str, bytes, bool, None, tuple, list, dict, set, frozenset; nothing else
  crosses, so custom ``__eq__``/``__len__``/``__class__`` never reach a test); a stdlib module
  becomes E's own copy; a program exception comes back as text (``ValueError: ... (program line
  3)``) and is re-raised from E's own class. Frames are bounded (16 MiB) and every call honours the
  test's deadline. ``E`` writes ``<nonce> pass i`` on a private pipe only after the test body
  returned and nothing unasked arrived (one answer per request: the forks of a program cannot each
  answer). ``U`` runs as the slot's uid, ``E`` as another one, both not dumpable: ``U`` cannot
  signal, ptrace or read ``E`` and never sees the nonce or the record pipe; it learns whether an
  assert failed only from whether the same test calls it again.
- Fresh interpreter: a zygote (``python -s -S -B -P``, empty environment but
  ``PYTHONHASHSEED=0``) is started once per caller process and never runs untrusted code; each
  program gets a fork of it. Only the stdlib is importable.
- Namespaces (probed at start-up, reported by `isolation`, never dropped silently: a weaker
  mode also emits a RuntimeWarning): pid (killing the program's init kills every process of
  it), net (no network), mount, ipc, uts. As root the zygote first pivots into a minimal
  read-only root: the stdlib (site-packages masked), the shared libraries of the interpreter,
  /dev/null, zero, urandom, random; each run adds a private /proc and tmpfs /tmp (working
  directory, 64 MiB), /var/tmp, /dev/shm. The repository, data sets, site-packages, /etc and
  /home are not there (`Isolation.host_filesystem`). As non-root (``userns``) the namespaces
  live in a user namespace, the program keeps the caller's uid and sees the host's files
  (evaluator and program share that uid; E is not dumpable). Without namespaces (``none``)
  only process groups, rlimits and a temp dir remain.
- Limits: RLIMIT_AS = ``memory_mb`` per process, RLIMIT_NPROC = 16 (per uid as root: a fork
  bomb stops there), RLIMIT_CPU above every wall deadline, RLIMIT_FSIZE = 16 MiB,
  RLIMIT_NOFILE = 256, RLIMIT_CORE = 0; PR_SET_NO_NEW_PRIVS; a seccomp filter makes the kernel
  keyring calls fail in the program (a uid's keyring would outlive the run). Worst-case memory
  of one program: 16 x ``memory_mb`` for the program's processes, as much for the evaluator's
  (trusted tests use one), plus 64 MiB of /tmp (no cgroup here: v1 only).
- Time: ``D`` gives the top-level code ``timeout_s`` and each test ``timeout_s`` (+0.5 s to
  kill a hung evaluator); the caller stops a step without progress after ``timeout_s + 1`` s and
  the whole run after ``STARTUP_S + (runnable tests + 1) * (timeout_s + TEST_SLACK_S)``.
  Spawning is part of ``STARTUP_S``: requests queue up on the zygote's socket (answers come
  back by request id) and a caller waits at most ``SPAWN_SHARE`` of it; a zygote that answers
  nothing for ``SPAWN_REPLY_S`` (stopped, stuck) is killed. The zygote runs 10 nice levels
  above its programs where allowed (root), so busy programs do not starve spawning.
- Load: one caller process runs at most ``MAX_RUNNING`` (16 per core) programs at once; more
  wait their turn, first come first served, for up to ``QUEUE_S`` (then ``sandbox_error``),
  and their time starts with the turn. Time limits are wall-clock: far more programs than
  cores would make correct programs time out, a wrong verdict rather than a slow one.
- Faults of the sandbox are never the program's: a zygote that is dead, stopped or cannot
  start, no fd or uid slot left, a coordinator cut short (it ends every run with a terminal
  record; without one the run was not finished) give status ``sandbox_error``, not
  ``crashed``. Such a run is retried once (on a new zygote when the old one failed), so
  `run_tests` takes at most twice its bound; a fault that persists is reported. Every wait
  uses ``poll`` (no fd number limit); fds, uid slots and temp dirs are released in
  ``finally``; `run_many` keeps every finished verdict.
- Forks: only the loader reports the top level and only the server answers a call; a fork
  of the program that returns there exits silently, so a forking program's verdicts are the
  same on every run.
- Caller: parses and compiles everything first (``optimize=0``: asserts stay under ``-O``);
  records are parsed strictly (index ``[0-9]{1,6}`` below ``len(tests)``, first verdict per
  test wins, anything else is ignored, never raises); stdout/stderr go to a bounded buffer
  (`SandboxResult.output`, 8 KiB), never parsed.
- Cleanup: the caller always (finally) stops the program's supervisor, which kills its init;
  a uid slot is reused only once no process of it is left. The supervisor dies with the zygote
  and the init with the supervisor (PR_SET_PDEATHSIG); the zygote kills every running
  supervisor when its caller's socket closes (the caller exited or was killed).

Residual risks, honestly: ``E`` unmarshals bytes from the program (``marshal`` is not hardened
against malicious input; bounded to 16 MiB, in an unprivileged, throwaway process that can at worst
crash: the test fails). A program may learn, within one test, whether an earlier call's assert
passed (a later request arrives), but cannot change an answer once given; its state carries over
between tests that end cleanly (one server for them, as in one ``check``). Arguments are copied to
the program, so a test that inspects an argument the function mutated sees its own copy. Memory is
bounded per process, not per run. In ``userns`` mode the host's files stay readable and evaluator
and program share a uid; in ``none`` mode (and as root there) much less holds: there a program can
even kill its coordinator, and its run is then reported ``sandbox_error`` (dropped, not scored).
Kernel bugs are out of scope: for untrusted code at scale, add a VM or gVisor.

Statuses: see `STATUSES` (``ok``, ``syntax_error``, ``load_error``, ``timeout``, ``crashed``,
``sandbox_error``). Importing this package imports neither torch nor the data stack.
"""

from llm_marl.sandbox.result import STATUSES, Isolation, SandboxResult
from llm_marl.sandbox.runner import isolation, run_many, run_tests
from llm_marl.sandbox.split import split_check

__all__ = [
    "STATUSES",
    "Isolation",
    "SandboxResult",
    "isolation",
    "run_many",
    "run_tests",
    "split_check",
]
