"""A throw-away single-node SLURM cluster for tests: a private munged, slurmctld and slurmd under one temp dir.

Needs Debian's ``slurm-wlm`` and ``munge`` packages and root. Nothing here touches the system munge or
``/etc/slurm``: every daemon gets its own key, socket, config, spool, pid and log files, and ports that are
free right now (never 6817/6818). Client commands find the cluster through ``SLURM_CONF``, which
`SlurmTestCluster.env` sets (and `SlurmTestCluster.activate` exports into ``os.environ``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["SlurmTestCluster", "missing_requirements"]

#: Debian installs the daemons here, outside a non-root PATH.
SBIN = Path("/usr/sbin")
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")


def missing_requirements() -> str | None:
    """Why a test cluster cannot start here (``None`` when it can)."""
    missing = [
        name for name in DAEMONS if shutil.which(name) is None and not (SBIN / name).exists()
    ]
    if missing:
        return f"SLURM test cluster needs {', '.join(missing)} on PATH (apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "SLURM test cluster needs root (slurmd runs jobs as their submitting user)"
    return None


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
    if any(p in (6817, 6818) for p in ports):
        return _free_ports(count)
    return ports


def _exe(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    return str(SBIN / name)


def _mem_available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 4096


class SlurmTestCluster:
    """One node, one partition (``debug``), accounting off.

    Args:
        root: An empty directory the cluster owns (config, munge key and socket, spool, logs).
        cluster_name: ``ClusterName`` (lower case letters; keep it unique per concurrent cluster).
        extra_conf: Lines appended to ``slurm.conf`` (``MinJobAge=5``, ``MaxArraySize=4``...).
    """

    def __init__(
        self, root: Path, *, cluster_name: str = "misentest", extra_conf: tuple[str, ...] = ()
    ) -> None:
        self.root = Path(root)
        self.cluster_name = cluster_name
        self.extra_conf = extra_conf
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.real_memory_mb = max(512, _mem_available_mb() // 2)
        self.conf = self.root / "slurm.conf"
        self.munge_dir = self.root / "munge"
        self.munge_socket = self.munge_dir / "munge.sock"
        self.partition = "debug"
        self._started = False

    # --- environment ------------------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The current environment plus ``SLURM_CONF`` pointing at this cluster."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        return env

    @contextlib.contextmanager
    def activate(self):  # type: ignore[no-untyped-def]
        """Export ``SLURM_CONF`` for the duration (so plain ``sbatch`` and the executor reach this cluster)."""
        old = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(self.conf)
        try:
            yield self
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a client command (``"squeue", "-h"``) against this cluster."""
        return subprocess.run(
            [_exe(args[0]), *args[1:]],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    # --- start ------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> SlurmTestCluster:
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        self.root.mkdir(parents=True, exist_ok=True)
        # jobs of non-root users must reach the socket and read their files
        self.root.chmod(0o755)
        self.munge_dir.mkdir(mode=0o755, exist_ok=True)
        self.munge_dir.chmod(0o755)
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(exist_ok=True)
        key = self.munge_dir / "munge.key"
        subprocess.run([_exe("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o600)
        subprocess.run(
            [
                _exe("munged"), "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
                f"--pid-file={self.munge_dir / 'munged.pid'}", f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={self.munge_dir / 'munged.seed'}",
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        self._started = True
        self._write_conf()
        subprocess.run([_exe("slurmctld"), "-c"], env=self.env, check=True, capture_output=True)
        self._wait(
            lambda: self.run("scontrol", "ping", check=False).returncode == 0, timeout, "slurmctld to answer"
        )
        subprocess.run([_exe("slurmd")], env=self.env, check=True, capture_output=True)
        self._wait(self._idle, timeout, "the node to be idle")
        return self

    def _write_conf(self) -> None:
        ctld_port, d_port = _free_ports(2)
        r = self.root
        lines = [
            f"ClusterName={self.cluster_name}",
            f"SlurmctldHost={self.host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={self.real_memory_mb // self.cpus}",
            "ReturnToService=2",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/backfill",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            f"NodeName={self.host} CPUs={self.cpus} RealMemory={self.real_memory_mb} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
        ]
        # extra_conf lines replace base lines setting the same key, and add the rest before the node lines
        extra = {ln.split("=", 1)[0].strip(): ln for ln in self.extra_conf}
        lines = [extra.pop(ln.split("=", 1)[0], ln) for ln in lines]
        lines[-2:-2] = list(extra.values())
        self.conf.write_text("\n".join(lines) + "\n")

    def _idle(self) -> bool:
        out = self.run("sinfo", "-h", "-o", "%T", check=False)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    @staticmethod
    def _wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.2)
        raise RuntimeError(f"SLURM test cluster: timed out waiting for {what}")

    # --- stop -------------------------------------------------------------------------------------------------

    def cancel_all(self, timeout: float = 60) -> None:
        """Cancel every job and wait until ``squeue`` lists none (running steps survive a stopped slurmd)."""
        if not self.conf.exists():
            return
        self.run("scancel", "--full", f"--user={os.getuid()}", check=False)
        with contextlib.suppress(RuntimeError):
            self._wait(self._queue_empty, timeout, "the queue to empty")

    def _queue_empty(self) -> bool:
        out = self.run("squeue", "-h", "-o", "%i %T", check=False)
        if out.returncode != 0:
            return True
        active = [ln for ln in out.stdout.splitlines() if ln.split()[-1] in _ACTIVE]
        return not active

    def stop(self) -> None:
        """Cancel all jobs, then SIGTERM slurmd, slurmctld and munged by their pid files."""
        if not self._started:
            return
        self.cancel_all()
        for pidfile in (self.root / "slurmd.pid", self.root / "slurmctld.pid", self.munge_dir / "munged.pid"):
            _terminate(pidfile)
        self._started = False

    def __enter__(self) -> SlurmTestCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_ACTIVE = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "RESIZING",
    "SIGNALING",
}


def _terminate(pidfile: Path, timeout: float = 15) -> None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
