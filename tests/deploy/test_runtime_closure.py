"""The robot-side runtime closure: what the G1's computer imports to drive the robot with an ONNX policy or planner.

It must import with torch, MuJoCo, gymnasium (and every other package but numpy, onnxruntime, the DDS binding and
evdev) unavailable, drive the control loop, plan with the ONNX planner from the planner state of its own
forward kinematics, and keep to Python 3.10 (JetPack 6's interpreter). No 3.10 interpreter
runs here: files are parsed with the 3.10 grammar (``ast.parse(feature_version=(3, 10))``), scanned for standard
library names added in 3.11+, and ruff checks them with ``per-file-target-version = "py310"`` (pyproject.toml).
"""

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import mujoco
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the onnx extra")

from deploy.policies.export import build_mlp_policy, export_policy_onnx
from deploy.policies.metadata import PolicyMetadata
from envs.planner.state import planner_state
from robot.g1 import constants as C
from robot.g1.model import build_g1_model, joint_dof_adr, joint_qpos_adr
from tests.robot.test_g1_body_kinematics import mujoco_bodies

ROOT = Path(__file__).resolve().parents[2]
ENTRY_MODULES = [
    "deploy.loop",
    "deploy.g1_backend",
    "deploy.unitree_remote",
    "deploy.gamepad",
    "deploy.operator_guide",
    "deploy.policies.onnx",
    "deploy.policies.planner",
    "deploy.policies.loader",
    "envs.planner.onnx",
    "robot.estimation",
]
if importlib.util.find_spec("cyclonedds") is not None:
    ENTRY_MODULES.append("robot.unitree.dds_robot")
ALLOWED_PACKAGES = {"numpy", "onnxruntime", "cyclonedds", "evdev"}
PY311_NAMES = re.compile(
    r"\b(tomllib|datetime\.UTC|from datetime import[^\n]*\bUTC\b|StrEnum|TaskGroup|ExceptionGroup|except\*|"
    r"typing\.Self|import[^\n]*\bSelf\b|LiteralString|assert_never|reveal_type|NotRequired|typing\.Never|import[^\n]*\bNever\b|"
    r"hashlib\.file_digest|itertools\.batched|typing\.override|enum\.verify|asyncio\.timeout\b)"
)
"""Standard-library names that Python 3.10 lacks (3.11 and 3.12 additions), as they appear in source."""

CHILD = r"""
import importlib.abc, json, sys
ALLOWED = set(json.loads(sys.argv[1]))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ALLOWED or top in ("deploy", "envs", "robot") or top in sys.stdlib_module_names:
            return None
        raise ImportError(f"blocked: {name} is not part of the runtime closure")

sys.meta_path.insert(0, Block())
for m in json.loads(sys.argv[2]):
    __import__(m)

import numpy as np
from deploy.loop import ControlLoop, LoopConfig
from deploy.policies.loader import load_policy
from deploy.policies.metadata import PolicyMetadata
from deploy.policies.planner import PlannerPolicy
from deploy.safety_fsm import Mode
from deploy.teleop import ScriptedTeleop, ScriptEvent
from envs.planner.onnx import OnnxPlanner, OnnxPlannerModel
from robot.g1 import constants as C
from robot.interface import RobotInterface
from robot.messages import RobotState
from robot.safety import SafetyConfig, SafetyLayer


class KinematicG1(RobotInterface):
    # Joints follow their targets at once: enough to drive the loop's state machine through to POLICY.
    joint_names = C.JOINT_NAMES

    def __init__(self):
        self.safety = SafetyLayer(
            SafetyConfig(), C.JOINT_LOWER_RAD, C.JOINT_UPPER_RAD, C.EFFORT_LIMIT_NM, C.VELOCITY_LIMIT_RAD_PER_S
        )
        self.q, self.t, self.sent = np.array(C.DEFAULT_JOINT_POS_RAD) * 0.5, 0.0, 0

    def connect(self): pass
    def close(self): pass
    def _now_s(self): return self.t
    def _measured_joint_pos_rad(self): return self.q.copy()

    def _apply_command(self, command):
        assert all(np.isfinite(a).all() for a in command.arrays())
        self.q, self.sent = command.q_target_rad.copy(), self.sent + 1

    def read_state(self):
        z = np.zeros(C.NUM_JOINTS)
        return RobotState(self.q.copy(), z, np.array([1.0, 0, 0, 0]), np.zeros(3), np.array([0, 0, 9.81]), self.t)


policy = load_policy(sys.argv[3])
robot = KinematicG1()
events = [ScriptEvent(0.0, deadman=False), ScriptEvent(0.02, request="stand", deadman=False),
          ScriptEvent(2.3, deadman=True), ScriptEvent(2.4, request="walk", deadman=True)]
loop = ControlLoop(robot, policy, ScriptedTeleop(events), cfg=LoopConfig())
modes = []
for k in range(150):
    robot.t = k * loop.period_s
    modes.append(loop.tick(robot.t))
planner = OnnxPlanner(OnnxPlannerModel(sys.argv[4]))
params = np.zeros((1, planner.param_dim), np.float32)
params[0, planner.gate("joystick")], params[0, 1] = 1.0, 0.5
chunk = planner.plan(np.zeros((1, planner.history, planner.state_dim), np.float32),
                     np.zeros((1, planner.history, planner.action_dim), np.float32), params)
# the planner as the loop's policy: the planner state by forward kinematics of a moving robot, then a plan
walker = PlannerPolicy(OnnxPlannerModel(sys.argv[4]), {}, PolicyMetadata.for_g1())
sample = robot.read_state()
sample.joint_vel_rad_per_s = np.linspace(-1.0, 1.0, C.NUM_JOINTS)
sample.base_pos_m, sample.base_lin_vel_m_per_s = np.array([0.1, 0.2, 0.75]), np.array([0.4, 0.0, 0.0])
walker.observe_state(sample, np.array([0.5, 0.0, 0.2]))
state = walker._states[-1]
action = walker.act(np.zeros(0))
joints = sample.joint_pos_rad
blocked = sorted(m for m in ("torch", "mujoco", "gymnasium", "onnx", "tyro", "scipy") if m in sys.modules)
print(json.dumps({"last_mode": modes[-1].value, "sent": robot.sent, "plan": list(chunk.shape),
                  "finite": bool(np.isfinite(chunk).all()), "loaded": blocked, "state": state.tolist(),
                  "joints": joints.tolist(), "action": action.tolist()}))
"""


def test_runtime_closure_drives_the_loop_without_torch_mujoco_or_gymnasium(tmp_path, tiny_onnx_planner):
    meta = PolicyMetadata.for_g1("stand")
    policy, _ = export_policy_onnx(
        build_mlp_policy(meta.obs_dim, 29, (32,), zero_output=True), meta, tmp_path / "p.onnx"
    )
    args = [json.dumps(sorted(ALLOWED_PACKAGES)), json.dumps(ENTRY_MODULES), str(policy), str(tiny_onnx_planner)]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["last_mode"] == "policy" and report["sent"] == 150 and report["loaded"] == []
    assert report["plan"] == [1, 8, 29] and report["finite"]
    # the child's planner state (numpy kinematics, MuJoCo blocked) is the simulator's for the same robot state
    model = build_g1_model()
    data = mujoco.MjData(model)
    base_pos, base_vel, joints = np.array([0.1, 0.2, 0.75]), np.array([0.4, 0.0, 0.0]), np.array(report["joints"])
    data.qpos[:3], data.qpos[3:7], data.qpos[joint_qpos_adr(model)] = base_pos, [1.0, 0.0, 0.0, 0.0], joints
    data.qvel[:3], data.qvel[joint_dof_adr(model)] = base_vel, np.linspace(-1.0, 1.0, 29)
    bodies = mujoco_bodies(model, data, C.TRACKED_BODIES)
    expected = planner_state(base_pos, data.qpos[3:7], base_vel, np.zeros(3), *bodies)
    np.testing.assert_allclose(report["state"], expected, rtol=0.0, atol=1e-9)
    assert len(report["action"]) == 29 and np.isfinite(report["action"]).all()


def closure_files() -> list[Path]:
    """Every Steer source file the entry modules import (run in a child so this process's imports do not count)."""
    code = (
        "import json, sys\n"
        f"for m in {ENTRY_MODULES!r}: __import__(m)\n"
        "print(json.dumps(sorted({getattr(m, '__file__', None) or '' for n, m in list(sys.modules.items())"
        " if n.split('.')[0] in ('deploy', 'envs', 'robot')})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return [Path(f) for f in json.loads(out.stdout) if f]


def test_closure_keeps_to_python_3_10():
    files = closure_files()
    assert len(files) > 20
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["per-file-target-version"]
    for file in files:
        rel = file.relative_to(ROOT).as_posix()
        source = file.read_text()
        ast.parse(source, filename=rel, feature_version=(3, 10))  # 3.11+ syntax raises SyntaxError
        hits = [m.group(0) for m in PY311_NAMES.finditer(source)]
        assert not hits, f"{rel} uses names Python 3.10 lacks: {hits}"
        assert any(Path(rel).match(glob) and v == "py310" for glob, v in ruff.items()), (
            f"{rel}: not in ruff's py310 set"
        )


def test_ast_check_catches_3_11_syntax():
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))
    assert PY311_NAMES.search("from datetime import UTC") and not PY311_NAMES.search("datetime.timezone.utc")


@pytest.fixture(scope="module")
def tiny_onnx_planner(tmp_path_factory):
    """The tiny G1 planner as ONNX with the joystick gradient only (the export takes seconds)."""
    pytest.importorskip("onnxscript", reason="needs the onnx extra")
    from deploy.export_planner import ExportPlannerConfig, build_planner, load_planner_model
    from deploy.export_planner_onnx import export_planner_onnx
    from tests.training.helpers import tiny_planner_model

    folder = tmp_path_factory.mktemp("closure")
    model = tiny_planner_model(folder / "planner_model.pt")
    planner = build_planner(load_planner_model(model), ExportPlannerConfig(model=model, sampler_steps=2))
    return export_planner_onnx(planner, folder / "planner.onnx", only_sets=["joystick"])[0]
