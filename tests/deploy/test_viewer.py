"""--viewer: the sync loop headless with a stand-in viewer, and the message without a display."""

import sys
import time

import pytest

from deploy.run import RunConfig, cli
from deploy.viewer import ViewerSync, ViewerUnavailableError, require_display
from robot.sim import MujocoRobot, SimRobotConfig


class FakeViewer:
    """What ViewerSync needs of mujoco.viewer's passive handle; records the simulated time of every frame."""

    def __init__(self, robot: MujocoRobot, frames_before_close: int) -> None:
        self.robot, self.left = robot, frames_before_close
        self.times: list[float] = []
        self.closed = False

    def sync(self) -> None:
        self.times.append(float(self.robot.data.time))
        self.left -= 1

    def is_running(self) -> bool:
        return self.left > 0 and not self.closed

    def close(self) -> None:
        self.closed = True


def test_viewer_follows_the_threaded_simulation_until_its_window_closes():
    with MujocoRobot(SimRobotConfig(threaded=True, realtime=True, initial_mode="hold")) as robot:
        viewer = FakeViewer(robot, frames_before_close=10)
        sync = ViewerSync(robot, viewer, rate_hz=50.0).start()
        deadline = time.perf_counter() + 5.0
        while not sync.closed and time.perf_counter() < deadline:
            time.sleep(0.01)
        sync.close()
    assert sync.closed and sync.frames == 10 and viewer.closed
    assert viewer.times == sorted(viewer.times) and viewer.times[-1] > viewer.times[0]  # the simulation moved on


def test_viewer_without_a_display_says_so_and_the_cli_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ViewerUnavailableError, match="needs a display"):
        require_display()
    monkeypatch.setattr(sys, "argv", ["deploy.run", "--viewer", "--out-dir", str(tmp_path)])
    assert cli() == 2
    assert "--viewer needs a display" in capsys.readouterr().err
    with pytest.raises(ValueError, match="expected --robot sim"):
        RunConfig(robot="g1", viewer=True)
    with pytest.raises(ValueError, match="needs --robot g1"):
        RunConfig(teleop="unitree-remote")
