"""Result types: `SandboxResult` (one program's verdicts) and `Isolation` (what is active)."""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = ("ok", "syntax_error", "load_error", "timeout", "crashed", "sandbox_error")
"""Every `SandboxResult.status`, from the most to the least specific cause:

- ``ok``: the program loaded and every test ended with a verdict (pass, or fail with an
  exception); ``passed`` may be below ``total``.
- ``syntax_error``: the program does not parse (found in the caller, nothing was spawned).
- ``load_error``: the program's top-level code raised (SystemExit included); no test ran.
- ``timeout``: the top-level code or at least one test ran past ``timeout_s``.
- ``crashed``: a test's process or the whole run ended without a verdict (``os._exit``,
  a signal such as SIGSEGV/SIGKILL, the memory limit, a killed harness).
- ``sandbox_error``: the sandbox itself could not judge the program (the zygote dead, stopped
  or not starting, no fd or uid slot left, setup failed, the coordinator cut short), even after
  one retry. Says nothing about the program: a reward computed from it is meaningless.
"""


@dataclass(frozen=True)
class SandboxResult:
    """Verdicts of one program's tests, decided in the caller from unforgeable records."""

    passed: int
    """Number of tests that ran to their end without an exception."""
    total: int
    """Number of tests given (``len(tests)``)."""
    status: str
    """One of `STATUSES`."""
    per_test: list[bool]
    """Pass/fail of each test, in order."""
    error: str | None
    """Bounded, deterministic summary of the first problem (None when everything passed)."""
    per_test_errors: list[str | None] = field(default_factory=list)
    """Per test: None if it passed, else e.g. ``"NameError: name 'aux' is not defined
    (program line 4)"``, ``"AssertionError (test line 1)"`` or ``"Timeout: ..."``."""
    output: str = ""
    """First `OUTPUT_LIMIT` bytes of the program's stdout+stderr, for debugging only: never
    parsed for verdicts, deterministic only if the program is."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        if len(self.per_test) != self.total:
            raise ValueError(f"{len(self.per_test)} verdicts for {self.total} tests")


@dataclass(frozen=True)
class Isolation:
    """Which isolation layers are active for programs run from this process."""

    mode: str
    """``root`` (namespaces + separate uid), ``userns`` (namespaces inside a user namespace,
    caller's uid), ``none`` (no namespaces: process group, rlimits, temp dir) or ``broken``."""
    user_namespace: bool
    pid_namespace: bool
    """Every process of a program dies with it (double forks and setsid included)."""
    net_namespace: bool
    """No network: only a down loopback device."""
    mount_namespace: bool
    """Private tmpfs over /tmp, /var/tmp, /dev/shm, /run/lock (see `host_filesystem`)."""
    ipc_uts_namespaces: bool
    private_proc: bool
    """/proc shows only the program's own processes."""
    separate_uid: bool
    """The program runs as an unprivileged uid of its own (one per concurrent slot)."""
    no_new_privs: bool
    rlimits: tuple[str, ...]
    """RLIMIT_* set for every program process."""
    fresh_interpreter: str
    """How each program gets a clean interpreter."""
    verdicts: str = ""
    """Where the tests run and the verdicts are decided."""
    host_filesystem: str = ""
    """What of the host's files a program can see."""
    errors: tuple[str, ...] = ()
    """Why stronger modes were rejected (empty when the strongest possible mode is active)."""
