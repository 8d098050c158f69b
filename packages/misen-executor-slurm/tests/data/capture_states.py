"""Regenerate states.json: real squeue/scontrol output for every job ending the executor maps.

Run as root where slurm-wlm and munge are installed: ``python capture_states.py`` (takes ~2 minutes, because
a --time=1 job needs ~90 s to reach TIMEOUT). The tests parse this file; nothing here runs in the test suite.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from misen_executor_slurm.testing import SlurmTestCluster

HERE = Path(__file__).parent


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="misen-capture-"))
    work = root / "jobs"
    work.mkdir(parents=True)
    cluster = SlurmTestCluster(
        root / "cluster",
        cluster_name="capture",
        extra_conf=(
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherParams=OverMemoryKill",
            "JobAcctGatherFrequency=1",
        ),
    )
    cluster.start()
    try:

        def sub(name: str, body: str, *flags: str) -> str:
            script = work / f"{name}.sh"
            script.write_text(
                f"#!/bin/bash\n#SBATCH --mem=64M\n#SBATCH --output={work}/{name}-%j.log\n{body}\n"
            )
            return cluster.run("sbatch", "--parsable", f"--chdir={work}", *flags, str(script)).stdout.strip()

        jobs = {
            "completed": sub("completed", "echo ok"),
            "failed": sub("failed", "exit 3"),
            "timeout": sub("timeout", "sleep 300", "--time=1"),
            "oom": sub("oom", "python3 -c 'x = bytearray(400 * 2**20); import time; time.sleep(5)'"),
            "scancelled": sub("scancelled", "sleep 300"),
            "array": sub("array", "echo $SLURM_ARRAY_TASK_ID", "--array=0-2"),
        }
        jobs["dependent"] = sub(
            "dependent", "echo never", f"--dependency=afterok:{jobs['failed']}", "--kill-on-invalid-dep=yes"
        )
        time.sleep(5)
        cluster.run("scancel", jobs["scancelled"])
        time.sleep(2)
        jobs["node_fail"] = sub("node_fail", "sleep 300", "--no-requeue")
        deadline = time.time() + 180
        while time.time() < deadline:
            state = cluster.run("squeue", "-h", "-o", "%T", "-j", jobs["timeout"]).stdout.strip()
            if state == "TIMEOUT":
                break
            time.sleep(2)
        cluster.run("scontrol", "update", f"nodename={cluster.host}", "state=down", "reason=capture")
        time.sleep(3)
        ids = ",".join(jobs.values())
        data = {
            "slurm_version": cluster.run("sbatch", "--version").stdout.strip(),
            "jobs": jobs,
            "squeue": cluster.run(
                "squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%r|%N", "-j", ids
            ).stdout,
            "scontrol": cluster.run("scontrol", "show", "job", "-o").stdout,
            "sacct_rc": cluster.run("sacct", "-j", jobs["completed"], check=False).returncode,
            "oom_log": next(work.glob("oom-*.log")).read_text(),
        }
        (HERE / "states.json").write_text(json.dumps(data, indent=1) + "\n")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
