"""MuJoCo's passive viewer on the simulated robot of ``python -m deploy.run --viewer``.

The viewer window needs a display; without one (no ``DISPLAY`` / ``WAYLAND_DISPLAY``) :func:`open_viewer` raises
:class:`ViewerUnavailableError` with what to do instead. :class:`ViewerSync` copies the simulation into the viewer from
a background thread at ``rate_hz``, holding the simulator's lock so a frame never shows a half-stepped state; it
takes any object with ``sync()`` and ``is_running()``, so the loop is tested headless with a stand-in.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from robot.sim import MujocoRobot


class ViewerUnavailableError(RuntimeError):
    """The viewer cannot open here (no display)."""


def has_display() -> bool:
    """Whether a window can open: an X11 or Wayland display is set."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_display() -> None:
    """Raise :class:`ViewerUnavailableError`, saying what to do, when no window can open."""
    if not has_display():
        raise ViewerUnavailableError(
            "--viewer needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set: run on a desktop session "
            "(or ssh -X), or drop --viewer (the run itself works headless)"
        )


def open_viewer(robot: MujocoRobot) -> Any:
    """MuJoCo's passive viewer on ``robot``'s model and data (:func:`require_display` first)."""
    require_display()
    import mujoco.viewer

    return mujoco.viewer.launch_passive(robot.model, robot.data)


class ViewerSync:
    """Keeps a passive viewer in step with a threaded :class:`MujocoRobot` (module docstring)."""

    def __init__(self, robot: MujocoRobot, viewer: Any, rate_hz: float = 30.0) -> None:
        if not rate_hz > 0.0:
            raise ValueError(f"rate_hz: expected > 0, got {rate_hz}")
        self.robot, self.viewer, self.period_s = robot, viewer, 1.0 / rate_hz
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ViewerSync", daemon=True)

    def start(self) -> ViewerSync:
        """Start syncing; returns self."""
        self._thread.start()
        return self

    @property
    def closed(self) -> bool:
        """The user closed the window (the run stops then)."""
        return not self.viewer.is_running()

    def _run(self) -> None:
        # MujocoRobot steps physics holding this lock; the viewer copies mjData while it is held.
        lock = self.robot._lock
        while not self._stop.wait(self.period_s) and self.viewer.is_running():
            with lock:
                self.viewer.sync()
            self.frames += 1

    def close(self) -> None:
        """Stop syncing and close the window."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        self.viewer.close()
