"""Child-process plumbing shared by load.py and attacks.py: start the system under test as child
processes, wait until they answer, stop them.

Every child gets its own log file and session, and SIGTERM when the harness dies, even by SIGKILL
(PR_SET_PDEATHSIG). Stopping is SIGTERM, then SIGKILL after STOP_TIMEOUT. All traffic goes to
127.0.0.1.

The scripts import this as a sibling module: run as `python3 benchmarks/load.py`, the script's
folder is sys.path[0]; run as `python3 -m benchmarks.load`, they import it relatively.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM when the harness dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _child_setup(nofile: int | None) -> Callable[[], None]:
    def setup() -> None:  # in the child, before exec
        die_with_parent()
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return setup


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 15, size: int = 16384) -> str:
        """The log's last `lines` lines, read from its last `size` bytes (a flooded log can be
        hundreds of MB)."""
        try:
            with self.log.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - size))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Child processes started by a harness, stopped (TERM, then KILL) by `stop`.

    `workdir` is where each child's log (`<name>.log`) goes and, unless `cwd` is given, where it
    runs; `start` may name another workdir for one child."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir
        self.started: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], *, workdir: Path | None = None,
              cwd: Path | None = None, nofile: int | None = None) -> Child:
        """Start `argv` with its output in `<workdir>/<name>.log`; `nofile`: its open-files limit."""
        folder = workdir or self.workdir
        if folder is None:
            raise ValueError("Children.start needs a workdir")
        log = folder / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=cwd or folder, start_new_session=True,
                preexec_fn=_child_setup(nofile),  # noqa: PLW1509  # prctl and setrlimit; the harnesses start no threads
            )
        child = Child(name, process, log)
        self.started.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.started):
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in reversed(self.started):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{child.name} did not stop within {STOP_TIMEOUT:g} s of SIGTERM: killed", file=sys.stderr)
                child.process.kill()
                child.process.wait(5)
        self.started.clear()


def status_kb(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...); 0 if it has none."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def temporary_children(prefix: str, keep: bool = False) -> Iterator[Children]:
    """Children working in a fresh temporary folder: on the way out they are stopped and the folder
    (logs, data) removed, or kept and named on stderr when `keep`."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    children = Children(workdir)
    try:
        yield children
    finally:
        children.stop()
        if keep:
            print(f"  (kept {workdir})", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def http(port: int, method: str, path: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTP/1.0 request on loopback: status (0 if the answer is no HTTP) and body."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            head = f"{method} {path} HTTP/1.0\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n"
            if body:
                head += "Content-Type: application/json\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            data = await reader.read(-1)
        finally:
            writer.close()
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1]) if head_bytes.startswith(b"HTTP/") else 0
    return status, payload


async def wait_ready(child: Child, port: int, path: str | None, *, timeout: float, probe_timeout: float = 2.0) -> None:
    """Poll until `port` accepts (and `path`, if given, answers 200), or fail with the child's log."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
        try:
            if path is None:
                async with asyncio.timeout(1.0):
                    _, writer = await asyncio.open_connection(HOST, port)
                writer.close()
                return
            status, body = await http(port, "GET", path, timeout=probe_timeout)
            if status == 200:
                return
            last = f"HTTP {status} {body[:200]!r}"
        except (OSError, TimeoutError) as exc:
            last = repr(exc)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name} not ready on port {port} within {timeout:g} s ({last}):\n{child.tail()}")
