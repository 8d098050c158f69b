"""`misen.workspace.writer_is_dead`: whose scratch entry (``<what>-<pid>-<random>-<host>``) may be removed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from misen.workspace import hostname, writer_is_dead


def test_a_live_writer_keeps_its_entry_and_a_dead_one_loses_it() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = time.time()
    assert writer_is_dead(f"stage-{os.getpid()}-ab12-{hostname()}", now) is False
    assert writer_is_dead(f"spool-{gone.pid}-ab12-{hostname()}", now) is True


def test_a_pid_now_held_by_a_process_started_after_the_entry_is_a_reused_pid() -> None:
    # This process started after an entry last changed an hour ago: whoever wrote it under this pid is gone.
    assert writer_is_dead(f"stage-{os.getpid()}-ab12-{hostname()}", time.time() - 3600) is True


def test_what_cannot_be_judged_here_is_none() -> None:
    assert writer_is_dead(f"stage-1-ab12-{hostname()}x", time.time()) is None  # another host's
    assert writer_is_dead("stage-notapid-ab12-" + hostname(), time.time()) is None
    assert writer_is_dead("stage-only-three", time.time()) is None
