"""Run generated programs against tests, treating every program as hostile.

```python
from llm_marl.sandbox import run_tests, isolation
r = run_tests(program, ["assert main(1) == 2", "for i in range(3):\\n    assert main(i) > i"])
r.passed, r.total, r.status, r.per_test, r.per_test_errors, r.error
```

API: `run_tests` (one program), `run_many` (a thread pool of `run_tests`), `isolation` (what is
active), `split_check` (HumanEval ``check(candidate)`` -> independent tests), `SandboxResult`,
`Isolation`, `STATUSES`.

Threat model: a program may loop or sleep forever, fork-bomb, eat memory, flood stdout/stderr,
write huge files, delete/modify host files, read secrets (files, the caller's environment),
open sockets, kill its parent or process group, exit early (``sys.exit``, ``os._exit``,
SystemExit/KeyboardInterrupt in a function), print fake "PASS" lines, monkeypatch builtins or
``AssertionError``, return "AlwaysEqual" objects, or leave background processes (double fork,
setsid). Nothing that should fail may pass, the host stays unharmed, no process is left behind,
and concurrent programs do not affect each other.

How (see `zygote`, `harness`, `compiling`, `runner`):

- Fresh interpreter: a zygote (``python -s -S -B -P``: no site, no user site, no bytecode
  writes, no script dir on sys.path; empty environment but ``PYTHONHASHSEED=0``) is started
  once per caller process and never runs untrusted code; each program gets a fork of it, so
  start-up costs ~3 ms instead of ~15 ms for a new interpreter. Only the stdlib is importable.
- Namespaces (probed at start-up, reported by `isolation`, never dropped silently: a weaker
  mode also emits a RuntimeWarning): pid (killing the program's init kills every process of
  it, double-forked and setsid ones included), net (no network, not even the host's loopback),
  mount (private /proc; private tmpfs over /tmp (the working directory, 64 MiB), /var/tmp,
  /dev/shm, /run/lock: nothing written lands on the host), ipc, uts. As root the program runs
  as its own unprivileged uid (one per concurrent slot, unique across processes through flock;
  directories it cannot traverse, such as /root, are replaced by an empty tmpfs with only the
  stdlib bound back read-only). As non-root the same namespaces live in a user namespace and a
  nested one drops every capability; the program keeps the caller's uid, so it can still write
  files the caller owns outside /tmp (`Isolation.separate_uid` is False). Without namespaces
  (mode ``none``) only the process group, rlimits and a temp dir remain: a setsid'd process can
  survive and, as root, the program runs as root.
- Limits: RLIMIT_AS = ``memory_mb`` per process, RLIMIT_NPROC = 64 (per slot uid as root, per
  user namespace otherwise: a fork bomb stops there), RLIMIT_CPU above every wall deadline,
  RLIMIT_FSIZE = 16 MiB (SIGXFSZ ignored: the write fails), RLIMIT_NOFILE = 256,
  RLIMIT_CORE = 0; PR_SET_NO_NEW_PRIVS; stdin is /dev/null. Worst-case memory of one program is
  64 x ``memory_mb`` (processes x address space) plus its 64 MiB /tmp.
- Time: ``timeout_s`` bounds the top-level code and each test (wall clock); the caller gives
  start-up ``STARTUP_S`` and every later step ``timeout_s + TEST_SLACK_S`` without progress
  before it stops the run, so a whole run lasts at most about
  ``STARTUP_S + (len(tests) + 1) * (timeout_s + TEST_SLACK_S)``.
- Verdicts: the parent parses and compiles everything (a program that does not parse is a
  ``syntax_error`` with line and column; nothing is spawned). The child loads the program once,
  then forks one process per test from that state, so a crash, exit or hang fails that test
  only. A test passes only if its process writes ``<nonce> pass <i>`` on a private pipe after
  the test body returned; the nonce is random per run; stdout/stderr are drained into a bounded
  buffer (`SandboxResult.output`, 8 KiB) and never parsed. Missing records fail.
- AlwaysEqual: asserts are rewritten so comparisons, arithmetic, truth tests and builtin calls
  see exact builtin values (subclasses of builtins are converted by their data; other objects
  are rejected), and the guards are the test function's parameters, out of reach of
  monkeypatching. The harness uses builtins captured before the program loads.
- Cleanup: the caller always (try/finally) stops the program's supervisor, which kills its init
  and returns only once the kernel has killed every process of the namespace; the zygote is a
  child subreaper that reaps everything.

Residual risks, honestly: the verdict checks run in the program's own process, so a program
that introspects the harness (``gc``, frames, ``sys.settrace``, ``ctypes``) can find the nonce
or swap a guard and forge passes; OS isolation still contains what it can do to the host.
Values reaching an assert only through attribute access or subscripts of program objects, or
through lenient builtins (``len``, ``str``, ``min`` ...), come from program dunders (those
results are themselves checked where they are compared). Files readable by everyone (most of
/usr, /etc, the project tree) stay readable. Kernel bugs are out of scope: for untrusted code at
scale, add a VM or gVisor boundary.

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
