"""Fan independent function calls out as Ray tasks over the cluster: the diagnosis's runs, one CPU each.

    pool = Fanout(address=None, cpus_per_task=1)   # joins --address / RAY_ADDRESS, else starts a local Ray
    pool.submit("baseline/0", run_one, spec)       # in priority order: Ray starts tasks in submission order
    while (done := pool.next_done(timeout_s=60)) is not None:
        key, result, error = done                  # as they finish; error is a one-line message or None
    pool.close()                                   # stops the local Ray it started (a cluster stays up)

The functions must be importable on every node (module-level functions of this package), and their
arguments and results plain data. ``connect`` prepares Ray's environment before Ray is imported, so this
module imports Ray only inside ``Fanout``. ``study.diagnosis.runs.LocalRunner`` has the same methods and
runs everything in-process, without Ray.
"""
from __future__ import annotations

from study.errors import UsageError, one_line
from study.search.ray_env import connect


class Fanout:
    def __init__(self, address: str | None, cpus_per_task: float = 1.0):
        try:
            connect(address)
        except UsageError as exc:  # e.g. a local Ray that does not come up in time on a busy machine
            raise UsageError(f"{exc}; retry, or run without Ray: --in-process") from None
        import ray

        self._ray = ray
        self._cpus = float(cpus_per_task)
        self._remote = {}  # fn -> its remote version
        self._keys = {}    # ObjectRef -> key
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.workers = max(1, int(cluster_cpus // self._cpus))

    def submit(self, key, fn, arg) -> None:
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(num_cpus=self._cpus, max_retries=1)(fn)
        self._keys[self._remote[fn].remote(arg)] = key

    def next_done(self, timeout_s: float | None = None):
        """(key, result, error) for the next task to finish, None when none is left; TimeoutError when
        none finishes within ``timeout_s``."""
        if not self._keys:
            return None
        ready, _ = self._ray.wait(list(self._keys), num_returns=1, timeout=timeout_s)
        if not ready:
            raise TimeoutError(f"no run finished within {timeout_s:.0f} s")
        key = self._keys.pop(ready[0])
        try:
            return key, self._ray.get(ready[0]), None
        except self._ray.exceptions.RayError as exc:  # the task raised, or its worker died
            cause = getattr(exc, "cause", None) or exc  # a task's own exception, not Ray's wrapper
            return key, None, f"{type(cause).__name__}: {one_line(cause)}"[:300]

    def cancel_pending(self) -> list:
        """Cancel every task not finished yet (running ones included); returns their keys."""
        keys = list(self._keys.values())
        for ref in self._keys:
            self._ray.cancel(ref, force=True)
        self._keys.clear()
        return keys

    def close(self) -> None:
        if self._keys:
            self.cancel_pending()
        self._ray.shutdown()  # stops a local Ray started here; from a cluster it only disconnects
