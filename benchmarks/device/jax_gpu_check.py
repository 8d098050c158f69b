"""A JAX array computed on the GPU as a task result round-trips (checked by hand on a machine with one GPU).

Under the local executor with ``num_cuda_gpus = 1``, a ``gpus=1`` task returns a ``jax.Array`` computed on its
GPU (bfloat16 and float32); the result is stored as ``.npy`` and loaded back equal, with its dtype. Prints one
JSON line with what it saw and exits non-zero if a check fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path

PROJECT = {
    "pyproject.toml": '[project]\nname = "jaxcheck"\nversion = "0"\n',
    ".misen.toml": '[executor]\ntype = "local"\nnum_cuda_gpus = 1\n[workspace]\ntype = "disk"\n',
    "src/jaxcheck/__init__.py": "",
    "src/jaxcheck/tasks.py": textwrap.dedent('''
        from misen import meta


        @meta(id="JAXCHECK01", cache=True, resources={"gpus": 1})
        def on_gpu(n: int, dtype: str):
            import jax
            import jax.numpy as jnp

            x = jnp.arange(n, dtype=dtype) * 3
            return {"value": x, "device": str(list(x.devices())[0]), "count": jax.device_count()}
    '''),
}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="misen-jax-"))
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.chdir(root)
    sys.path.insert(0, str(root / "src"))
    import jax.numpy as jnp
    import numpy as np
    from jaxcheck.tasks import on_gpu
    from misen import Task, run
    from misen.reporting import PlainReporter

    tasks = {dt: Task(on_gpu, n=1000, dtype=dt) for dt in ("float32", "bfloat16")}
    report = run(list(tasks.values()), reporter=PlainReporter())
    seen: dict[str, object] = {"report_ok": report.ok}
    checks = {"run ok": report.ok}
    for dt, t in tasks.items():
        r = t.result()
        value = r["value"]
        expected = jnp.arange(1000, dtype=dt) * 3
        seen[dt] = {"computed_on": r["device"], "devices_seen": r["count"], "loaded_type": type(value).__name__,
                    "dtype": str(value.dtype)}
        checks[f"{dt} computed on the gpu"] = "cuda" in r["device"].lower() or "gpu" in r["device"].lower()
        checks[f"{dt} round-trips equal with its dtype"] = str(value.dtype) == dt and bool(
            np.array_equal(np.asarray(value).astype(np.float32), np.asarray(expected).astype(np.float32))
        )
    seen["checks"] = checks
    print(json.dumps(seen, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
