"""The G1 walking task: observation groups, mirror symmetry of the whole step, rewards, checkpointed state."""

import numpy as np
import pytest
import torch

from envs.g1.observations import observation_mirror_map
from envs.locomotion.config import LocomotionConfig
from envs.locomotion.env import G1LocomotionEnv
from robot.g1 import constants as C
from tests.envs.helpers import mirror_world_state, quiet_locomotion_config


def test_observation_groups_and_sizes():
    env = G1LocomotionEnv(quiet_locomotion_config())
    obs = env.get_observations()
    assert obs["policy"].shape == (2, env.num_obs) == (2, 98)
    assert obs["critic"].shape == (2, env.num_critic_obs) == (2, 106)
    # Clean critic prefix equals the noiseless policy observation.
    assert torch.allclose(obs["critic"][:, : env.num_obs], obs["policy"])
    env.close()


def test_mirrored_world_stays_the_mirror_image_of_the_original():
    env = G1LocomotionEnv(quiet_locomotion_config())
    for _ in range(25):  # settle: both feet firmly on the floor
        env.step(torch.zeros(2, 29))
    env.command[0] = [0.5, 0.2, 0.4]
    mirror_world_state(env, 0, 1)
    perm, sign = observation_mirror_map(C.NUM_JOINTS, env.loco.env.obs)
    cperm, csign = env.critic_mirror_map()
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        a = 0.3 * torch.randn(29, generator=gen, dtype=torch.float64)
        actions = torch.stack([a, torch.from_numpy(C.mirror_joint_values(a.numpy()))]).float()
        obs, reward, terminated, _, _ = env.step(actions)
        assert not terminated.any()
        p, c = obs["policy"].numpy(), obs["critic"].numpy()
        np.testing.assert_allclose(p[1], p[0][perm] * sign, atol=2e-3)
        np.testing.assert_allclose(c[1], c[0][cperm] * csign, atol=2e-3)
        assert abs(float(reward[1] - reward[0])) < 1e-3 * max(1.0, abs(float(reward[0])))
    env.close()


def test_reward_terms_prefer_tracking_and_contact_pattern():
    env = G1LocomotionEnv(quiet_locomotion_config())
    for _ in range(5):  # the robot lands on both feet (it starts 7 mm above the floor)
        env.step(torch.zeros(2, 29))
    assert env._feet()[2].all()
    env.command[:] = 0.0
    zero = np.zeros((2, 29))
    dt, w = env.cfg.env.ctrl_dt_s, env.loco.rewards
    still = env._reward_terms(zero)
    assert still["tracking_lin_vel"][0] > 0.8 * w.tracking_lin_vel * dt
    env.command[:, 0] = 1.0  # now the (nearly) standing robot misses the command
    assert env._reward_terms(zero)["tracking_lin_vel"][0] < 0.1 * still["tracking_lin_vel"][0]
    # Both feet down: in single support one foot should be up (one match), in double support none should.
    for steps, matches in ((10, 1), (15, 1), (30, 1), (35, 1), (0, 2), (20, 2)):
        env.episode_length[:] = steps
        assert env._reward_terms(zero)["contact"][0] == pytest.approx(matches * w.contact * dt)
    # Feet in the air during swing are pulled towards the swing height: a lifted foot costs less.
    assert still["feet_swing_height"][0] == 0.0  # in contact -> not counted
    env.close()


def test_state_dict_round_trip_continues_identically():
    cfg = LocomotionConfig(num_envs=4, num_threads=2, seed=3)
    a = G1LocomotionEnv(cfg)
    gen = torch.Generator().manual_seed(1)
    acts = [0.5 * torch.randn(4, 29, generator=gen) for _ in range(12)]
    for x in acts[:6]:
        a.step(x)
    snapshot = a.state_dict()
    b = G1LocomotionEnv(cfg)
    b.load_state_dict(snapshot)
    for x in acts[6:]:
        oa, ra, ta, _, _ = a.step(x)
        ob, rb, tb, _, _ = b.step(x)
        assert torch.equal(oa["policy"], ob["policy"]) and torch.equal(ra, rb) and torch.equal(ta, tb)
    with pytest.raises(ValueError, match="num_envs"):
        G1LocomotionEnv(LocomotionConfig(num_envs=2, num_threads=1)).load_state_dict(snapshot)
    a.close()
    b.close()


def test_curriculum_grows_once_per_episode_length_and_never_on_falls():
    env = G1LocomotionEnv(quiet_locomotion_config(num_envs=2, episode_length_s=0.2))  # 10 steps
    full = env.loco.rewards.tracking_lin_vel * env.cfg.env.ctrl_dt_s * env.max_episode_length
    start = env.curriculum_scale
    done = np.array([0, 1])
    env._episode_sums["tracking_lin_vel"] = np.array([0.9, 0.8]) * full  # tracked well for a whole episode
    for _ in range(9):
        env._update_curriculum(done)
    assert env.curriculum_scale == start  # not before a full window
    env._update_curriculum(done)
    assert env.curriculum_scale == pytest.approx(start + env.loco.commands.curriculum_step)
    env._episode_sums["tracking_lin_vel"] = np.array([0.9, 0.9]) * full * 0.3  # perfect tracking, fell at 30 %
    for _ in range(30):
        env._update_curriculum(done)
    assert env.curriculum_scale == pytest.approx(start + env.loco.commands.curriculum_step)
    state = env.state_dict()
    assert state["curriculum_window"].shape == (3,)
    env.close()


def _leg_refs(env: G1LocomotionEnv, leg_phase: np.ndarray) -> np.ndarray:
    return env._ref_offsets(leg_phase)[:, list(C.LEG_JOINT_IDS)]


def test_reference_posture_lifts_the_swing_leg_and_mirrors():
    env = G1LocomotionEnv(quiet_locomotion_config())
    lift, stance = env.loco.rewards.ref_lift_rad, env.loco.stance_fraction
    mid_swing = stance + 0.5 * (1.0 - stance)
    ref = _leg_refs(env, np.array([[mid_swing, mid_swing - 0.5], [0.02, 0.52]]))  # left mid-swing; both stance
    names = [C.JOINT_NAMES[i] for i in C.LEG_JOINT_IDS]
    left = {n: ref[0, names.index(n)] for n in ("left_hip_pitch_joint", "left_knee_joint", "left_ankle_pitch_joint")}
    assert left == pytest.approx(
        {"left_hip_pitch_joint": -lift, "left_knee_joint": 2 * lift, "left_ankle_pitch_joint": -lift}
    )
    assert np.count_nonzero(ref[0]) == 3 and not ref[1].any()  # the stance leg and double support stay at default
    # Half a cycle later the right leg does the mirror image.
    later = _leg_refs(env, np.array([[mid_swing - 0.5, mid_swing], [mid_swing - 0.5, mid_swing]]))
    full = np.zeros((2, C.NUM_JOINTS))
    full[0, list(C.LEG_JOINT_IDS)], full[1, list(C.LEG_JOINT_IDS)] = ref[0], later[0]
    np.testing.assert_allclose(C.mirror_joint_values(full[0]), full[1], atol=1e-12)
    env.close()


def _sole_pose(env: G1LocomotionEnv, ref: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Forward kinematics at the default pose plus ``ref`` with the pelvis fixed: sole (x, y, yaw) in the pelvis
    frame and the sole's tilt (rad)."""
    import mujoco

    from robot.g1.constants import FOOT_SITES

    model = env.models[0]
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0
    data.qpos[env._qadr] = C.DEFAULT_JOINT_POS_RAD + ref
    mujoco.mj_kinematics(model, data)
    site = model.site(FOOT_SITES[side]).id
    rot = data.site_xmat[site].reshape(3, 3)
    return np.r_[data.site_xpos[site, :2], np.arctan2(rot[1, 0], rot[0, 0])], float(np.arccos(rot[2, 2]))


@pytest.mark.parametrize("command", [(0.8, 0.0, 0.0), (0.0, 0.4, 0.0), (0.0, 0.0, 1.0), (0.5, 0.3, 0.8)])
def test_reference_stride_travels_at_the_commanded_velocity(command):
    """Across a stance the reference moves each planted sole against the commanded body motion (the outer foot
    taking the longer step in a turn), so that the reference gait travels at the command."""
    cfg = quiet_locomotion_config()
    cfg.rewards.ref_stride_scale = 1.0
    env = G1LocomotionEnv(cfg)
    stance = env.loco.stance_fraction
    env.command[:] = command
    vx, vy, w = command
    for side in (0, 1):
        shift = np.array([0.0, 0.5]) if side == 0 else np.array([0.5, 0.0])
        touchdown, tilt0 = _sole_pose(env, env._ref_offsets((shift[None] + 0.0) % 1.0)[0], side)
        liftoff, tilt1 = _sole_pose(env, env._ref_offsets((shift[None] + stance - 1e-9) % 1.0)[0], side)
        x, y = 0.5 * (touchdown[:2] + liftoff[:2])
        expected = -stance * env.loco.gait_period_s * np.array([vx - w * y, vy + w * x, w])
        moved = liftoff - touchdown
        # First-order inverse kinematics: within 12 % of the planar step and 0.02 rad of the turn.
        assert np.linalg.norm(moved[:2] - expected[:2]) < 0.12 * np.linalg.norm(expected[:2]) + 0.01, (side, moved)
        assert abs(moved[2] - expected[2]) < 0.02
        assert max(tilt0, tilt1) < np.radians(8.0)  # the ankles keep the sole near level
    # A zero command leaves the reference that steps in place.
    env.command[:] = 0.0
    phases = np.array([[0.1, 0.6], [0.7, 0.2]])
    stepping_in_place = env._ref_offsets(phases)
    env._stride[:] = 0.0
    np.testing.assert_array_equal(stepping_in_place, env._ref_offsets(phases))
    env.close()


def test_reference_turn_gain_scales_only_the_turning_stride():
    """``ref_turn_gain`` multiplies the reference's response to the yaw-rate command and nothing else."""
    cfg = quiet_locomotion_config()
    cfg.rewards.ref_stride_scale = 1.0
    plain = G1LocomotionEnv(cfg)
    cfg.rewards.ref_turn_gain = 2.5
    turning = G1LocomotionEnv(cfg)
    phases = np.array([[0.1, 0.6], [0.45, 0.95]])
    for env in (plain, turning):
        env.command[:] = [0.0, 0.0, 0.8]
    in_place = plain._ref_offsets(phases)
    plain.command[:] = 0.0
    in_place -= plain._ref_offsets(phases)  # the turning part of the plain reference
    turn = turning._ref_offsets(phases) - plain._ref_offsets(phases)
    assert np.abs(in_place).max() > 0.01
    np.testing.assert_allclose(turn, 2.5 * in_place, atol=1e-9)
    for env in (plain, turning):
        env.command[:] = [0.6, -0.3, 0.0]  # no turn: the same reference
    np.testing.assert_allclose(turning._ref_offsets(phases), plain._ref_offsets(phases), atol=1e-12)
    plain.close()
    turning.close()


def test_reference_stride_is_continuous_around_the_cycle():
    cfg = quiet_locomotion_config()
    cfg.rewards.ref_stride_scale = 1.0
    env = G1LocomotionEnv(cfg)
    env.command[:] = [0.6, -0.3, 0.7]
    stance = env.loco.stance_fraction
    for before, after in ((1.0 - 1e-9, 0.0), (stance - 1e-9, stance + 1e-9)):
        a = env._ref_offsets(np.array([[before, 0.5]] * 2))[0]
        b = env._ref_offsets(np.array([[after, 0.5]] * 2))[0]
        np.testing.assert_allclose(a, b, atol=1e-6)
    env.close()


def test_reference_with_stride_is_mirror_symmetric():
    """The reference for the mirrored command half a cycle later is the mirror image (for symmetric augmentation)."""
    cfg = quiet_locomotion_config()
    cfg.rewards.ref_stride_scale = 1.0
    env = G1LocomotionEnv(cfg)
    rng = np.random.default_rng(0)
    cmd = rng.uniform(-1.0, 1.0, (2, 3))
    phase = rng.uniform(0.0, 1.0, 2)
    env.command[:] = cmd
    ref = env._ref_offsets(np.stack([phase, phase + 0.5], 1) % 1.0)
    env.command[:] = cmd * [1.0, -1.0, -1.0]
    mirrored = env._ref_offsets(np.stack([phase + 0.5, phase], 1) % 1.0)
    np.testing.assert_allclose(C.mirror_joint_values(ref), mirrored, atol=1e-9)
    env.close()
