"""Status of many tasks on the S3 workspace (issue 17): requests and time of `misen.cache.statuses`, against one
task at a time, on a real S3-compatible server (moto) on 127.0.0.1.

Run ``uv run python benchmarks/bench_s3_status.py [--n 10000] [--sample 200]``; prints one JSON object. The
workspace is filled with ``n`` tasks (70 % done, 10 % failed, 10 % stale, 10 % pending; the done ones share one
stored result), the writer's run ends (`sync`, which uploads its record pack), and a workspace object of another
"machine" (an empty local cache) asks for every status at once, counting the HTTP requests its S3 client sends.
The one-at-a-time figures are measured on ``sample`` tasks and scaled to ``n``. Not part of ``run.py``: filling
the store takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["bench_s3_status"]


def _counting(ws: Any) -> list[int]:
    ws.remote.exists("nothing-here")  # opens the client
    seen: list[int] = []
    ws.remote.fs.s3.meta.events.register("before-send.s3", lambda **_: seen.append(1))
    return seen


def bench_s3_status(n: int = 10000, sample: int = 200) -> dict[str, Any]:
    """Fill an S3 workspace on moto with ``n`` tasks, then time and count a batched status against per-task ones."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import s3fs
    from misen import Task, cache
    from misen.testing import tasks as T
    from misen_workspace_s3 import S3Workspace
    from moto.server import ThreadedMotoServer

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ[name] = value
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(endpoint_url=endpoint, use_listings_cache=False).mkdir(bucket)
        url = f"s3://{bucket}/ws"
        tmp = Path(tempfile.mkdtemp(prefix="misen-s3-status-"))
        writer = S3Workspace(url=url, endpoint_url=endpoint, cache_dir=str(tmp / "writer"))
        tasks = [Task(T.add, a=i, b=-i) for i in range(n)]
        done, failed, stale = int(n * 0.7), int(n * 0.1), int(n * 0.1)
        t0 = time.perf_counter()
        rh = cache.store(writer, 0)
        for t in tasks[:done]:
            cache.link(writer, t, resolved=t.hash, result=rh)
        for t in tasks[done : done + failed]:
            cache.record_failure(writer, t, status="failed", error="it broke", log=None)
        for t in tasks[done + failed : done + failed + stale]:
            writer.put_record("key", t.key_hash, {"task": "0" * 32, "result": rh})
        writer.sync()
        fill_s = time.perf_counter() - t0

        reader = S3Workspace(url=url, endpoint_url=endpoint, cache_dir=str(tmp / "reader"))
        requests = _counting(reader)
        t0 = time.perf_counter()
        got = cache.statuses(reader, tasks)
        batched_s = time.perf_counter() - t0
        batched_requests = len(requests)
        picked = tasks[:: max(1, n // sample)][:sample]
        del requests[:]
        t0 = time.perf_counter()
        one = {t.hash: cache.status(reader, t) for t in picked}
        single_s = time.perf_counter() - t0
        single_requests = len(requests)
        assert all(got[h] == s for h, s in one.items())
        counts: dict[str, int] = {}
        for status in got.values():
            counts[status] = counts.get(status, 0) + 1
        return {
            "n": n,
            "statuses": counts,
            "fill_s": round(fill_s, 1),
            "batched_s": round(batched_s, 2),
            "batched_requests": batched_requests,
            "one_by_one_requests_per_task": round(single_requests / len(picked), 2),
            "one_by_one_s_per_task": round(single_s / len(picked), 4),
            "one_by_one_estimate_s": round(single_s / len(picked) * n, 1),
            "one_by_one_estimate_requests": round(single_requests / len(picked) * n),
            "load": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="how many tasks (default 10000)")
    parser.add_argument("--sample", type=int, default=200, help="tasks asked one at a time (default 200)")
    args = parser.parse_args(argv)
    print(json.dumps(bench_s3_status(args.n, args.sample)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
