"""Portable by construction: POSIX-only calls live in stock_manager/shared/platform.py and nowhere else
(nor asyncio subprocesses anywhere: Windows' selector loop, which psycopg needs, cannot run them).

An AST scan, so a comment or docstring naming SIGKILL is fine and an aliased import is not.  Tests
may use POSIX calls; only the package is scanned.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stock_manager

PACKAGE = Path(stock_manager.__file__).parent
ALLOWED = PACKAGE / "shared" / "platform.py"

# modules that do not exist on Windows
POSIX_MODULES = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "posix", "syslog", "crypt",
                 "spwd", "nis", "readline", "posixpath"}
# attributes of os / signal / asyncio loops that Windows lacks (or that do nothing useful there)
POSIX_ATTRS = {
    "add_signal_handler", "remove_signal_handler",
    "killpg", "getpgid", "setpgid", "setpgrp", "getsid", "setsid", "fork", "forkpty", "getuid", "geteuid",
    "getgid", "getegid", "chown", "lchown", "mkfifo", "getloadavg", "nice", "sched_getaffinity",
    "sched_setaffinity", "pthread_kill", "pthread_sigmask", "sigwait", "sigwaitinfo", "siginterrupt",
    "setitimer", "getitimer", "alarm", "pause", "WNOHANG",
    "SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGALRM", "SIGSTOP", "SIGCONT",
    "SIGPIPE", "SIGTSTP", "SIGWINCH",
}
# subprocess / asyncio.create_subprocess_* keyword arguments that only POSIX honours
POSIX_KWARGS = {"start_new_session", "preexec_fn", "process_group", "pass_fds", "restore_signals",
                "user", "group", "extra_groups", "umask"}
SUBPROCESS_CALLS = {"Popen", "run", "call", "check_call", "check_output",
                    "create_subprocess_exec", "create_subprocess_shell"}
# asyncio subprocesses need the proactor loop on Windows, and psycopg the selector loop we choose there
SELECTOR_LOOP_UNSUPPORTED = {"create_subprocess_exec", "create_subprocess_shell"}


def posix_only_uses(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names
                      if a.name.split(".")[0] in POSIX_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in POSIX_MODULES:
                found.append((node.lineno, f"from {node.module} import"))
            elif node.module in ("os", "signal", "asyncio"):
                found += [(node.lineno, f"from {node.module} import {a.name}") for a in node.names
                          if a.name in POSIX_ATTRS]
        elif isinstance(node, ast.Attribute) and node.attr in POSIX_ATTRS:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in SELECTOR_LOOP_UNSUPPORTED:
                found.append((node.lineno, f"{name}() (no subprocesses on Windows' selector loop)"))
            if name in SUBPROCESS_CALLS:
                found += [(node.lineno, f"{name}({k.arg}=...)") for k in node.keywords if k.arg in POSIX_KWARGS]
    return found


def test_posix_only_calls_appear_only_in_the_platform_module() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}" for line, what in posix_only_uses(tree)]
    assert not offenders, "POSIX-only calls outside stock_manager/shared/platform.py:\n" + "\n".join(offenders)


def test_the_scan_sees_each_kind_of_posix_only_call() -> None:
    """The scan itself: each of these must be caught, and the portable lines must not."""
    caught = {
        "loop.add_signal_handler(signal.SIGTERM, stop)": ".add_signal_handler",
        "os.killpg(pid, 9)": ".killpg",
        "os.kill(pid, signal.SIGKILL)": ".SIGKILL",
        "from signal import SIGKILL": "from signal import SIGKILL",
        "import fcntl": "import fcntl",
        "from resource import getrlimit": "from resource import",
        "subprocess.Popen(argv, start_new_session=True)": "Popen(start_new_session=...)",
        "await asyncio.create_subprocess_exec(*argv)": "create_subprocess_exec() (no subprocesses on Windows' "
                                                        "selector loop)",
    }
    for src, what in caught.items():
        found = [w for _, w in posix_only_uses(ast.parse(src))]
        assert found == [what], src
    portable = ["os.kill(pid, signal.SIGTERM)", "signal.signal(signal.SIGINT, h)", "proc.kill()",
                "subprocess.run(argv, creationflags=0)", "'''SIGKILL in a docstring'''"]
    for src in portable:
        assert posix_only_uses(ast.parse(src)) == [], src


def test_the_platform_module_holds_what_the_rest_needs() -> None:
    tree = ast.parse(ALLOWED.read_text(encoding="utf-8"))
    assert posix_only_uses(tree), "the platform module is where the POSIX calls went"
