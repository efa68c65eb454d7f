"""``python -m deploy.run --robot g1`` end to end against the robot double on Cyclone DDS 0.10 (the robot's
version): the double runs in its own process, Steer's G1 backend, loop and safety state machine in this one, the
operator is the Unitree remote the double reports (``--remote-file``).

Covered: a policy driven zero torque -> default pose -> hold -> policy by the remote's buttons and sticks, then the
e-stop button; start-up refusing another robot type or joint order with nothing commanded; the dry run commanding
nothing; a robot that stops publishing makes the loop damp within 0.1 s.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cyclonedds", reason="needs cyclonedds 0.10.2: run .ci/install_cyclonedds.sh")
from robot.unitree.dds import binding_version_problem

if binding_version_problem() is not None:
    pytest.skip(binding_version_problem(), allow_module_level=True)

from deploy.g1_backend import G1LinkConfig, G1StartupError, startup_problems
from deploy.loop import LoopConfig
from deploy.policies.metadata import PolicyMetadata
from deploy.run import RunConfig, main
from deploy.safety_fsm import SafetyFsmConfig
from robot.g1 import constants as C
from tests.deploy.helpers import export_hold_policy

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_BASE = 200 + (os.getpid() % 6) * 5  # 200..229, one domain per test below, away from the other DDS tests


class Double:
    """``python -m robot.unitree.sim_bridge`` in its own process, with a remote file the test presses buttons in."""

    def __init__(self, tmp: Path, domain_id: int, *extra: str) -> None:
        self.remote = tmp / "remote.json"
        self.press()
        self.stats_path, self.log_path = tmp / "double_stats.json", tmp / "double.log"
        args = ["--domain-id", str(domain_id), "--duration-s", "120", "--stats-json", str(self.stats_path)]
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "robot.unitree.sim_bridge", *args, "--remote-file", str(self.remote), *extra],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def press(self, *buttons: str, remote: bool = True, **axes: float) -> None:
        """What the remote reports from now on (written atomically: the double re-reads the file when it changes)."""
        tmp = self.remote.with_suffix(".tmp")
        tmp.write_text(json.dumps({"remote": remote, "buttons": list(buttons), **axes}))
        tmp.replace(self.remote)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGCONT)  # in case a test froze it
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return json.loads(self.stats_path.read_text()) if self.stats_path.is_file() else {}


@pytest.fixture
def double(tmp_path, request):
    made: list[Double] = []

    def start(k: int, *extra: str) -> Double:
        made.append(Double(tmp_path, DOMAIN_BASE + k, *extra))
        return made[-1]

    yield start
    for d in made:
        d.stop()


def g1_config(tmp_path: Path, domain_id: int, policy: Path, duration_s: float, **kwargs) -> RunConfig:
    fsm = SafetyFsmConfig(move_duration_s=0.5, **kwargs.pop("fsm", {}))
    return RunConfig(
        policy=policy,
        robot="g1",
        teleop="unitree-remote",
        g1=G1LinkConfig(network_interface="lo", domain_id=domain_id, connect_timeout_s=30.0),
        duration_s=duration_s,
        out_dir=tmp_path / "run",
        loop=LoopConfig(fsm=fsm),
        tensorboard=False,
        **kwargs,
    )


def press_later(double: Double, schedule: list[tuple[float, tuple, dict]], started: threading.Event):
    """Press ``(t_s, buttons, axes)`` in order, ``t_s`` after the loop's first tick."""

    def run() -> None:
        started.wait(60.0)
        t0 = time.perf_counter()
        for t_s, buttons, axes in schedule:
            time.sleep(max(0.0, t0 + t_s - time.perf_counter()))
            double.press(*buttons, **axes)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def transitions(summary: dict) -> list[str]:
    return [t.split("] ")[1] for t in summary["transitions"]]


def test_remote_drives_the_policy_through_the_state_machine_over_dds(tmp_path, double, monkeypatch):
    d = double(0)
    policy = export_hold_policy(tmp_path)  # stand gains: the double is free-standing, no gantry holds it
    started = threading.Event()
    import deploy.loop as loop_module

    start = loop_module.ControlLoop.start

    def start_and_signal(self, now_s):
        start(self, now_s)
        started.set()

    monkeypatch.setattr(loop_module.ControlLoop, "start", start_and_signal)
    d.press("L1", "A")  # stand at the first tick: the double hangs on no gantry, so zero torque must be short
    schedule = [
        (0.3, (), {}),
        (1.2, ("R1",), {}),  # deadman
        (1.4, ("R1", "A"), {}),  # policy
        (1.6, ("R1",), {"ly": 0.6, "rx": -0.5}),  # walk forward, turn left
        (2.6, ("B",), {}),  # e-stop
    ]
    presser = press_later(d, schedule, started)
    # a busy shared CI core must not end the run early: this test is about the path through the state machine
    lenient = {"stale_state_timeout_s": 0.2, "joystick_timeout_s": 0.2, "max_consecutive_misses": 50}
    cfg = g1_config(tmp_path, DOMAIN_BASE, policy.path, 3.2, fsm=lenient)
    summary = main(cfg)
    presser.join()
    stats = d.stop()
    assert [t.split(": ")[0] for t in transitions(summary)] == [
        "zero_torque -> move_to_default",
        "move_to_default -> hold",
        "hold -> policy",
        "policy -> damping",
    ], summary["transitions"]
    assert summary["first_damping_reason"] == "e-stop pressed"
    times = [float(t.split("]")[0].strip("[ s")) for t in summary["transitions"]]
    assert times[3] - times[2] > 0.8  # ~1.2 s of policy between R1+A and B
    assert any("R1+A" in p for p in summary["operator_prompts"]) and len(summary["operator_prompts"]) == 5
    # the double received commands all the way, every one with a valid CRC and within the G1's limits
    assert stats["commands_received"] > 500 and stats["commands_bad_crc"] == 0
    assert stats["commands_over_limits"] == 0 and stats["damping_commands"] > 0
    assert stats["last_mode_machine"] == 5  # echoed from the robot's LowState


def test_startup_refuses_another_joint_order_or_robot_type_and_commands_nothing(tmp_path, double):
    swapped = list(C.JOINT_NAMES)
    swapped[0], swapped[6] = swapped[6], swapped[0]  # left and right hip pitch exchanged
    policy = export_hold_policy(tmp_path, joint_names=swapped)
    d = double(1)
    with pytest.raises(G1StartupError, match=r"(?s)joint order differs from index 0.*Nothing was commanded"):
        main(g1_config(tmp_path, DOMAIN_BASE + 1, policy.path, 1.0))
    other = double(2, "--mode-machine", "3")
    good = export_hold_policy(tmp_path / "good")
    with pytest.raises(G1StartupError, match=r"mode_machine: the robot reports 3, a unitree_g1_29dof reports 5"):
        main(g1_config(tmp_path, DOMAIN_BASE + 2, good.path, 1.0))
    assert d.stop()["commands_received"] == 0 and other.stop()["commands_received"] == 0


def test_startup_problems_list_every_difference():
    meta = PolicyMetadata.for_g1("stand")
    assert startup_problems(meta, 5) == []
    assert [p.split(":")[0] for p in startup_problems(meta, None)] == ["mode_machine"]
    problems = startup_problems(PolicyMetadata.for_g1("stand", robot="unitree_h1"), 5)
    assert problems[0].startswith("robot type: the policy was trained for 'unitree_h1'")


def test_dry_run_reads_the_robot_and_commands_nothing(tmp_path, double):
    d = double(3)
    d.press("L1")
    policy = export_hold_policy(tmp_path)
    cfg = g1_config(tmp_path, DOMAIN_BASE + 3, policy.path, 1.0, dry_run=True)
    cfg.g1.dry_run_s = 1.0
    report = main(cfg)["dry_run"]
    stats = d.stop()
    assert report["commands_published"] == 0 and stats["commands_received"] == 0
    assert report["state_rate_hz"] > 200 and report["bad_crc"] == 0 and report["mode_machine"] == 5
    assert report["remote_present"] and report["remote_buttons_seen"] == ["L1"]
    assert report["tilt_rad"] < 0.1 and report["max_pose_error_rad"] < 0.1  # the double holds the default pose


def test_a_robot_that_stops_publishing_makes_the_loop_damp_within_100_ms(tmp_path, double, monkeypatch):
    d = double(4)
    policy = export_hold_policy(tmp_path)
    from robot.unitree.dds_robot import DdsRobot

    published: list[tuple[float, bool]] = []
    publish = DdsRobot._publish

    def recording(self, command):
        damping = bool(np.all(command.kp_nm_per_rad == 0.0) and command.kd_nms_per_rad[0] > 0.0)
        published.append((time.perf_counter(), damping))
        publish(self, command)

    monkeypatch.setattr(DdsRobot, "_publish", recording)
    frozen_at: list[float] = []

    def freeze() -> None:
        while not published:
            time.sleep(0.01)
        time.sleep(0.8)  # standing up
        d.proc.send_signal(signal.SIGSTOP)
        frozen_at.append(time.perf_counter())

    d.press("L1", "A")
    thread = threading.Thread(target=freeze, daemon=True)
    thread.start()
    summary = main(g1_config(tmp_path, DOMAIN_BASE + 4, policy.path, 1.5))
    thread.join()
    reason = summary["first_damping_reason"]
    assert reason.startswith("stale robot state") or reason.startswith("joystick silent"), summary["transitions"]
    first_damping = next(t for t, damping in published if damping and t > frozen_at[0])
    assert first_damping - frozen_at[0] <= 0.1
