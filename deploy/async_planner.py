"""An asynchronous planner behind the control loop's policy interface (BeyondMimic runs its planner this way).

A planner is slow (tens of ms per plan) and plans a chunk of future actions; the control loop is fast (20 ms per
tick) and needs one action per tick, on time. :class:`AsyncChunkPolicy` runs ``plan(obs) -> (H, J)`` in its own
thread at ``rate_hz`` on the newest observation the loop has given it, and answers each ``act(obs)`` at once with
the action of the current tick from the newest chunk: row ``k = tick - tick_of_the_plan's_observation``.

Safety: when the newest chunk is older than ``max_stale_ticks`` (or exhausted) ``act`` returns NaN, which the
loop's safety state machine turns into damping ("non-finite policy action"); an exception in the planner thread
does the same from then on. ``reset()`` (called by the loop when it leaves POLICY) drops the chunk, so a chunk
planned before a pause is never executed after it; the first ``act`` after a reset plans synchronously.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from deploy.policies.base import RuntimePolicy
from deploy.policies.metadata import PolicyMetadata

LOG = logging.getLogger("steer.deploy.async_planner")
ChunkPlanner = Callable[[np.ndarray], np.ndarray]


class AsyncChunkPolicy(RuntimePolicy):
    """``act`` from the newest chunk of a planner running in a background thread (see module docstring)."""

    def __init__(
        self,
        planner: ChunkPlanner,
        metadata: PolicyMetadata,
        rate_hz: float = 25.0,
        max_stale_ticks: int = 8,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(metadata)
        if not rate_hz > 0.0 or max_stale_ticks < 1:
            raise ValueError(f"rate_hz > 0 and max_stale_ticks >= 1 expected, got {rate_hz}, {max_stale_ticks}")
        self.planner, self.period_s, self.max_stale_ticks, self.clock = planner, 1.0 / rate_hz, max_stale_ticks, clock
        self._cv = threading.Condition()
        self._obs: np.ndarray | None = None
        self._obs_tick = -1
        self._chunk: np.ndarray | None = None
        self._chunk_tick = -1
        self._tick = -1
        self._generation = 0  # bumped by reset(): a plan started before it is never published
        self._error: BaseException | None = None
        self._stop = False
        self.plans = 0
        self.plan_latencies_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="AsyncChunkPolicy", daemon=True)
        self._thread.start()

    # ----- planner thread -------------------------------------------------------------------------------------
    def _plan(self, obs: np.ndarray) -> np.ndarray:
        t0 = self.clock()
        chunk = np.asarray(self.planner(obs), dtype=np.float64)
        self.plan_latencies_s.append(self.clock() - t0)
        self.plans += 1
        if chunk.ndim != 2 or chunk.shape[1] != self.metadata.num_joints or len(chunk) < 1:
            raise ValueError(f"planner: expected a chunk (H, {self.metadata.num_joints}), got {chunk.shape}")
        return chunk

    def _run(self) -> None:
        next_plan = self.clock()
        while True:
            with self._cv:
                while not self._stop and (self._obs is None or self._obs_tick <= self._chunk_tick):
                    self._cv.wait(timeout=self.period_s)
                if self._stop:
                    return
                obs, tick, generation = self._obs.copy(), self._obs_tick, self._generation
            try:
                chunk = self._plan(obs)
            except Exception as exc:  # reported through act() as NaN, logged here
                LOG.error("planner thread failed: %r; the policy now answers NaN (damping)", exc)
                with self._cv:
                    self._error = exc
                return
            with self._cv:
                if generation == self._generation and tick > self._chunk_tick:
                    self._chunk, self._chunk_tick = chunk, tick
            next_plan += self.period_s
            delay = next_plan - self.clock()
            if delay > 0.0:
                with self._cv:
                    self._cv.wait_for(lambda: self._stop, timeout=delay)
            else:
                next_plan = self.clock()

    # ----- control-loop side ----------------------------------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        """This tick's action from the newest chunk; NaN when it is stale or the planner failed."""
        obs = np.ascontiguousarray(obs, dtype=np.float32)
        with self._cv:
            self._tick += 1
            self._obs, self._obs_tick = obs, self._tick
            first = self._chunk is None and self._error is None
            generation = self._generation
            self._cv.notify_all()
        if first:  # the first tick after a start or reset plans in the loop thread: nothing older may run
            try:
                chunk = self._plan(obs)
            except Exception as exc:  # same contract as the thread
                LOG.error("planner failed: %r", exc)
                return np.full(self.metadata.num_joints, np.nan)
            with self._cv:
                if generation == self._generation and self._chunk_tick < self._obs_tick:
                    self._chunk, self._chunk_tick = chunk, self._obs_tick
        with self._cv:
            if self._error is not None or self._chunk is None:
                return np.full(self.metadata.num_joints, np.nan)
            k = self._tick - self._chunk_tick
            if k > self.max_stale_ticks or k >= len(self._chunk):
                return np.full(self.metadata.num_joints, np.nan)
            return np.clip(self._chunk[k], -self._clip, self._clip)

    def reset(self) -> None:
        """Drop the chunk and the observation (the loop left POLICY): nothing planned before is executed after."""
        with self._cv:
            self._chunk, self._obs = None, None
            self._chunk_tick = self._obs_tick = self._tick
            self._generation += 1

    def warmup(self, calls: int = 0) -> None:
        """Nothing to warm in the loop thread: the planner is timed in its own thread."""

    def close(self) -> None:
        """Stop the planner thread."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=5.0)
