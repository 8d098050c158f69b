"""What an executor and the processes it runs units in share: the framing of the messages on their pipes, and
how the end of such a process is told to the user.

Public so that the local executor's worker processes and the ``dask`` executor's unit processes
(``misen-executor-dask``) speak the same framing: each message a pickle prefixed by its length (8 bytes, big
endian). Requests and outcomes only ever pass between processes of one run, on one machine.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
from typing import Any, BinaryIO

__all__ = ["HEADER", "describe_exit", "read_message", "start", "write_message"]

#: The length prefix of each message.
HEADER = struct.Struct(">Q")


def write_message(stream: BinaryIO, message: Any) -> None:
    """Write one message (any picklable value) and flush it."""
    data = pickle.dumps(message, protocol=5)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    """The next message, or ``None`` at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def describe_exit(what: str, pid: int, code: int) -> str:
    """One line on why the process ``pid`` (``what``: "the worker process") ended with ``code`` mid-task."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        text = f"{what} (pid {pid}) was killed by {name}"
        if -code == signal.SIGKILL:
            text += " (out of memory, or killed from outside)"
        return text
    return f"{what} (pid {pid}) exited with code {code} while running the task"


def start(module: str, env: dict[str, str], parent_variable: str) -> subprocess.Popen[bytes]:
    """Start ``python -P -m module`` with pipes on its stdin and stdout, in a session of its own (so a signal to
    its process group reaches what its task starts), ``env`` added to this process's environment and
    ``parent_variable`` naming this process (for the child to end when it is gone)."""
    full = dict(os.environ)
    full.update(env)
    full[parent_variable] = str(os.getpid())
    # -P: the current directory must not shadow the snapshot the process imports the project from.
    return subprocess.Popen(
        [sys.executable, "-P", "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=full,
        start_new_session=True,
        close_fds=True,
    )
