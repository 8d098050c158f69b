"""Fixtures of the slurm executor's tests: one real single-node SLURM cluster per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from misen_executor_slurm.testing import SlurmTestCluster, missing_requirements


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmTestCluster]:
    """A running cluster (munged, slurmctld, slurmd) with ``SLURM_CONF`` exported; stopped after the session.

    Memory enforcement is on (jobacct_gather/linux + OverMemoryKill), so a job over its ``--mem`` is killed as
    on a real cluster.
    """
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm", numbered=True)
    cluster = SlurmTestCluster(
        root,
        cluster_name=f"misen{os.getpid()}",
        extra_conf=(
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherParams=OverMemoryKill",
            "JobAcctGatherFrequency=1",
        ),
    )
    cluster.start()
    try:
        with cluster.activate():
            yield cluster
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def _fresh_misen_session(misen_session: object) -> object:
    """Each test gets its own misen session (`misen.testing`), so nothing carries over between tests."""
    return misen_session
