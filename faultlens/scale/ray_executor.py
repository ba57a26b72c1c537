"""The Ray executor: units run on `UnitWorker` actors that write straight to a shared store.

Each actor is one worker process holding every model it has served, so a model loads once
per worker, not once per unit. Fault tolerance is Ray's own: actors are created with
`max_restarts=-1, max_task_retries=-1`, so when a worker process (or its node) dies Ray
restarts the actor where there is room and re-runs the unit that was in flight. The store's
unique keys make the re-run harmless: chunks already committed are skipped, so every case is
stored exactly once. This file only hands units to idle actors (at most one in flight each)
and reports completions; Ray does the placement, restarts and retries.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence

from faultlens.errors import FaultlensError
from faultlens.scale.executor import Executor, OnDone, executors, is_sqlite
from faultlens.scale.plan import ModelSpec, Unit
from faultlens.scale.worker import UnitWorker
from faultlens.types import Case

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of "HOST:PORT" or "ray://HOST:PORT"; FaultlensError if it is neither."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise FaultlensError(f"--ray-address {address!r} is not HOST:PORT; give the head node's address, e.g. 127.0.0.1:6379, or 'auto'.")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail with one line if nothing listens at the Ray address (Ray itself would retry for minutes)."""
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise FaultlensError(f"Cannot reach the Ray cluster at {address} ({why}); start one there with "
                             f"`ray start --head` or fix --ray-address.") from None


@executors.register("ray")
class RayExecutor(Executor):
    """Runs units on Ray actors; needs a store every worker can reach (PostgreSQL).

    Attributes:
        pids: worker process ids after `start` (what a fault-injection test kills).
        served_by: pids that finished units (a pid not in `pids` is an actor Ray restarted).
        timings: (driver round trip s, time inside the worker s) per finished unit; their
            difference is the per-unit overhead Ray adds.
    """

    name = "ray"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.actors: list = []
        self.pids: list[int] = []
        self.timings: list[tuple[float, float]] = []
        self.served_by: set[int] = set()
        self._owns_ray = False
        self._address = cfg.ray_address or os.environ.get("RAY_ADDRESS")

    # ------------------------------------------------------------------ set-up
    def preflight(self, store_target: str) -> None:
        if is_sqlite(store_target):
            raise FaultlensError("The Ray executor needs a store every worker can write to: pass --store "
                                 "postgresql+psycopg://USER@HOST:PORT/DB (SQLite works only with --executor local).")
        if self._address and self._address not in ("auto", "local"):
            check_reachable(self._address)

    def _connect(self) -> None:
        import ray

        if ray.is_initialized():  # a caller (or a test) already connected this process: use that
            return
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's C++ retry chatter would bury our one error line
        quiet = dict(logging_level=logging.ERROR, log_to_driver=False)
        addr = self._address
        try:
            if addr and addr.startswith("ray://"):
                ray.init(address=addr, logging_level=logging.ERROR)
            elif addr:
                host = addr if addr in ("auto", "local") else split_address(addr)[0]
                extra = {"_node_ip_address": "127.0.0.1"} if host in _LOOPBACK else {}
                ray.init(address=addr, **quiet, **extra)
            else:  # a private instance on this machine, its driver-facing services on loopback
                ray.init(address="local", num_cpus=self.cfg.workers or os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            auth = ("" if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else
                    " If the cluster uses token authentication, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token).")
            raise FaultlensError(f"Cannot connect to Ray at {addr or 'a new local instance'}: {first}. "
                                 f"Check --ray-address (the HOST:PORT `ray start --head` printed).{auth}") from None
        self._owns_ray = True

    def start(self, models: Sequence[ModelSpec], store) -> None:
        import ray

        self._connect()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = self.cfg.workers or cpus
        if n > cpus:
            raise FaultlensError(f"--workers {n} is more than the {cpus} CPUs the Ray cluster has; use at most {cpus}.")
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(UnitWorker)
        self._n_models = len(models)
        self.actors = [actor.remote(list(models), store.url, 1) for _ in range(n)]
        self.pids = self._get([a.warm.remote() for a in self.actors])

    def inspect(self, plan: Mapping[str, Sequence[Case]]) -> list[dict]:
        import ray

        n_models = self._n_models
        plan_ref = ray.put({k: list(v) for k, v in plan.items()})
        return self._get([self.actors[m % len(self.actors)].inspect.remote(m, plan_ref) for m in range(n_models)])

    # ------------------------------------------------------------------ running
    def run(self, units: Sequence[Unit], on_done: OnDone) -> None:
        import ray

        queue, idle = deque(units), list(self.actors)
        pending: dict = {}  # ref -> (unit, actor, submit time)
        while queue or pending:
            while queue and idle:
                a, u = idle.pop(), queue.popleft()
                pending[a.run.remote(u)] = (u, a, time.perf_counter())
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                u, a, t0 = pending.pop(ref)
                res = self._get(ref)
                self.timings.append((time.perf_counter() - t0, res.seconds))
                self.served_by.add(res.worker)
                idle.append(a)
                on_done(u, res)

    def _get(self, refs):
        """`ray.get`, turning a worker's FaultlensError back into one (its one-line message)."""
        import ray

        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, FaultlensError):
                raise FaultlensError(str(cause)) from None
            raise

    def describe(self) -> dict:
        return {"kind": self.name, "ray_address": self._address or "local", "workers": len(self.actors),
                "shard_size": self.cfg.shard_size,
                # pids that finished units but were not started by us: actors Ray restarted after a death
                "restarted_workers": len(self.served_by - set(self.pids))}

    def close(self) -> None:
        import ray

        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # already gone; nothing to release
                pass
        self.actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False
