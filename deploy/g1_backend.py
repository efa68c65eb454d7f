"""The real G1 (or its DDS robot double) as the robot of ``python -m deploy.run --robot g1``.

Start-up follows the order of Unitree's deploy examples and BeyondMimic's deploy controller:

1. open DDS on the given interface and domain and wait for a first LowState with a valid CRC (nothing is
   published: until the control loop's first command the robot stays under whatever controls it);
2. compare the robot with the policy's metadata: the robot type reported in ``mode_machine`` must be the one the
   policy was trained for, and the policy's joint order, count, default pose and gains must be the G1's motor order
   and gain sets. Any difference refuses the start (:class:`G1StartupError`, one line per difference and what it
   means) before a single command is sent;
3. the control loop then commands zero torque, the move to the default pose, hold and the policy through the
   safety state machine, exactly as on the simulated robot.

:func:`dry_run` stops after step 2: it reads the state for a while, prints what an operator checks before the
first command (state rate, pose, tilt, remote) and publishes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from deploy.policies.metadata import PolicyMetadata
from deploy.safety_fsm import tilt_rad
from robot.compat import RobotSpec, policy_robot_differences
from robot.g1 import constants as C


@dataclass
class G1LinkConfig:
    """How ``--robot g1`` reaches the robot."""

    network_interface: str | None = None
    """NIC on the robot's 192.168.123.x network (e.g. enp3s0; see `ip -br addr`); 'lo' for the robot double."""
    domain_id: int = 0
    """DDS domain: 0 on the real G1; the robot double (python -m robot.unitree.sim_bridge) defaults to 1."""
    connect_timeout_s: float = 5.0
    """Refuse to start when no valid LowState arrives within this time."""
    dry_run_s: float = 3.0
    """How long --dry-run reads the state."""

    def __post_init__(self) -> None:
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"domain_id: expected an integer in [0, 232], got {self.domain_id}")
        for name in ("connect_timeout_s", "dry_run_s"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}: expected > 0 s, got {getattr(self, name)}")


class G1StartupError(RuntimeError):
    """The G1 start-up refused to command the robot; the message says why and what to do."""


def startup_problems(
    meta: PolicyMetadata, mode_machine: int | None, joint_names: tuple[str, ...] = C.JOINT_NAMES
) -> list[str]:
    """Every reason not to drive a robot reporting ``mode_machine`` (motors in ``joint_names`` order) with a policy
    described by ``meta``."""
    from robot.unitree.msgs import MODE_MACHINE_BY_ROBOT

    problems = []
    expected = MODE_MACHINE_BY_ROBOT.get(meta.robot)
    if expected is None:
        problems.append(
            f"robot type: the policy was trained for {meta.robot!r}; "
            f"the G1 backend drives {sorted(MODE_MACHINE_BY_ROBOT)}"
        )
    elif mode_machine != expected:
        problems.append(
            f"mode_machine: the robot reports {mode_machine}, a {meta.robot} reports {expected}: another robot type "
            "or hardware revision, whose motor slots and limits the policy does not know"
        )
    problems += policy_robot_differences(meta, RobotSpec.g1(), joint_names)
    return problems


def connect_g1(cfg: G1LinkConfig, meta: PolicyMetadata) -> Any:
    """A connected :class:`robot.unitree.dds_robot.DdsRobot` that passed the start-up checks (module docstring).

    Raises :class:`G1StartupError` (never having published a command) when a check fails.
    """
    try:
        from robot.unitree.dds import binding_version_problem
        from robot.unitree.dds_robot import DdsRobot, DdsRobotConfig
    except ImportError as err:
        raise G1StartupError(f"--robot g1 needs Cyclone DDS: {err}") from err

    if cfg.network_interface is None:
        raise G1StartupError(
            "--robot g1 needs --g1.network-interface: the NIC on the robot's 192.168.123.x network "
            "(`ip -br addr` lists them), or 'lo' for the robot double on this machine"
        )
    problem = binding_version_problem()
    if problem is not None and cfg.network_interface != "lo":
        raise G1StartupError(problem)
    print(
        f"[g1] waiting for rt/lowstate on {cfg.network_interface}, DDS domain {cfg.domain_id} "
        f"(up to {cfg.connect_timeout_s:.0f} s)...",
        flush=True,
    )
    robot_cfg = DdsRobotConfig(
        domain_id=cfg.domain_id,
        network_interface=cfg.network_interface,
        connect_timeout_s=cfg.connect_timeout_s,
        expected_mode_machine=None,  # checked below against the policy, with the other differences
    )
    robot = DdsRobot(robot_cfg)
    try:
        robot.connect()
    except TimeoutError as err:
        raise G1StartupError(
            f"{err}\nOn the robot: is it powered, this PC on 192.168.123.x over {cfg.network_interface}, "
            "and the robot in debug mode? (see docs/deploy_g1.md)"
        ) from err
    problems = startup_problems(meta, robot.mode_machine, robot.joint_names)
    if problems:
        robot.close()  # publishes nothing: no command was ever sent
        lines = "\n".join(f"  - {p}" for p in problems)
        raise G1StartupError(
            f"refusing to start: the robot does not match the policy ({len(problems)} difference(s)):\n{lines}\n"
            "Nothing was commanded. Use a policy exported for this robot (python -m deploy.export ...)."
        )
    print(f"[g1] connected: mode_machine {robot.mode_machine}, {C.NUM_JOINTS} joints in the policy's order", flush=True)
    return robot


def dry_run(robot: Any, duration_s: float, tick_s: float = 0.02) -> dict[str, Any]:
    """Read ``robot`` (a connected ``DdsRobot``) for ``duration_s``, print the operator's checks, command nothing."""
    from deploy.unitree_remote import parse_wireless_remote, remote_present

    start_states, start = robot.num_states, time.perf_counter()
    max_age_s, buttons_seen, remote_seen = 0.0, set(), False
    while time.perf_counter() - start < duration_s:
        time.sleep(tick_s)
        max_age_s = max(max_age_s, robot.state_age_s())
        data, _ = robot.wireless_remote()
        if remote_present(data):
            remote_seen = True
            buttons_seen |= parse_wireless_remote(data).buttons
    elapsed = time.perf_counter() - start
    state = robot.read_state()
    deviation = np.abs(state.joint_pos_rad - C.DEFAULT_JOINT_POS_RAD)
    worst = int(np.argmax(deviation))
    report = {
        "state_rate_hz": (robot.num_states - start_states) / elapsed,
        "max_state_age_ms": 1e3 * max_age_s,
        "bad_crc": robot.num_bad_state_crc,
        "mode_machine": robot.mode_machine,
        "tilt_rad": tilt_rad(state.imu_quat_wxyz),
        "max_pose_error_rad": float(deviation[worst]),
        "max_pose_error_joint": C.JOINT_NAMES[worst],
        "remote_present": remote_seen,
        "remote_buttons_seen": sorted(buttons_seen),
        "commands_published": robot.num_published,
    }
    print(
        f"[dry-run] {duration_s:.1f} s: LowState at {report['state_rate_hz']:.0f} Hz (oldest "
        f"{report['max_state_age_ms']:.1f} ms, {report['bad_crc']} bad CRC), mode_machine {report['mode_machine']}\n"
        f"[dry-run] tilt {report['tilt_rad']:.2f} rad; farthest joint from the default pose: "
        f"{report['max_pose_error_joint']} {report['max_pose_error_rad']:.2f} rad\n"
        f"[dry-run] remote {'heard' if remote_seen else 'NOT heard (all-zero bytes)'}; buttons seen: "
        f"{report['remote_buttons_seen'] or 'none'} (press each of L1, R1, A, B now to check them)\n"
        f"[dry-run] commands published: {report['commands_published']} (a dry run sends none)",
        flush=True,
    )
    return report
