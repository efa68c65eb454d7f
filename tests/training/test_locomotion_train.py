"""The G1 walking PPO trainer: a killed-and-resumed run equals an uninterrupted one; checkpoint errors are clear."""

import dataclasses
import json

import numpy as np
import pytest
import torch

pytest.importorskip("rsl_rl")

from envs.locomotion.config import LocomotionConfig
from training.checkpoint import CheckpointError, load_checkpoint
from training.locomotion.train import PPOConfig, TrainConfig, Trainer


def _cfg(run_dir, iterations: int, resume: bool = False) -> TrainConfig:
    return TrainConfig(
        run_dir=run_dir,
        iterations=iterations,
        save_every=2,
        eval_every=2,
        eval_episodes=2,
        eval_seconds=0.1,
        resume=resume,
        torch_threads=1,
        env=LocomotionConfig(num_envs=8, num_threads=1),
        ppo=PPOConfig(
            num_steps_per_env=4,
            num_mini_batches=2,
            num_learning_epochs=1,
            actor_hidden_dims=(32,),
            critic_hidden_dims=(32,),
        ),
    )


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.ppo.get_policy().parameters()]


def test_resume_after_stop_matches_uninterrupted_run(tmp_path):
    straight = Trainer(_cfg(tmp_path / "a", 4))
    straight.run()
    first = Trainer(_cfg(tmp_path / "b", 2))
    first.run()
    resumed = Trainer(_cfg(tmp_path / "b", 4, resume=True))
    assert resumed.iteration == 2
    resumed.run()
    for x, y in zip(_params(straight), _params(resumed), strict=True):
        assert torch.equal(x, y)
    rows_a = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 5
    assert [r.split(",")[4] for r in rows_a] == [r.split(",")[4] for r in rows_b]  # same rewards
    evals_a = (tmp_path / "a" / "eval.csv").read_text().splitlines()
    assert evals_a == (tmp_path / "b" / "eval.csv").read_text().splitlines()  # evaluations leave training alone
    assert [r.split(",")[0] for r in evals_a[1:]] == ["2", "4"]
    meta = json.loads((tmp_path / "b" / "export" / "actor_meta.json").read_text())
    assert meta["obs_gait_period_s"] > 0 and len(meta["joint_names"]) == 29
    actor = torch.jit.load(str(tmp_path / "b" / "export" / "actor.pt"))
    assert actor(torch.zeros(1, 98)).shape == (1, 29)


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"last\.pt: checkpoint file not found"):
        Trainer(_cfg(tmp_path / "none", 2, resume=True))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a readable checkpoint"):
        load_checkpoint(bad)
    cfg = dataclasses.replace(_cfg(tmp_path / "c", 2))
    assert cfg.iterations == 2


def test_sigterm_finishes_the_iteration_and_checkpoints(tmp_path):
    import signal

    class Preempted(Trainer):
        def iterate(self):
            scalars = super().iterate()
            if self.iteration == 3:
                signal.raise_signal(signal.SIGTERM)  # as a scheduler preempting the job would
            return scalars

    before = signal.getsignal(signal.SIGTERM)
    trainer = Preempted(dataclasses.replace(_cfg(tmp_path / "p", 10), save_every=100))
    trainer.run()
    assert trainer.iteration == 3 and load_checkpoint(tmp_path / "p" / "checkpoints" / "last.pt")["iteration"] == 3
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored


def test_init_from_starts_a_new_run_from_another_runs_networks(tmp_path):
    source = Trainer(_cfg(tmp_path / "src", 2))
    source.run()
    # the networks alone (no optimizer state), small enough to move between machines: JSON beside safetensors
    assert (tmp_path / "src" / "model" / "weights.safetensors").exists()
    assert (tmp_path / "src" / "model" / "weights.json").exists()
    cfg = dataclasses.replace(
        _cfg(tmp_path / "ft", 1), init_from=tmp_path / "src" / "model" / "weights.safetensors", reset_action_std=0.3
    )
    tuned = Trainer(cfg)
    assert tuned.iteration == 0 and tuned.env_steps == 0
    src_params = dict(source.ppo.get_policy().named_parameters())
    for name, p in tuned.ppo.get_policy().named_parameters():
        if "std" in name:
            assert torch.allclose(p, torch.full_like(p, 0.3))
        else:
            assert torch.equal(p, src_params[name]), name
    tuned.run()
    assert tuned.iteration == 1

    wider = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, actor_hidden_dims=(48,)), run_dir=tmp_path / "w")
    with pytest.raises(ValueError, match=r"weights\.safetensors: its networks do not fit"):
        Trainer(wider)
    with pytest.raises(ValueError, match="reset_action_std"):
        Trainer(dataclasses.replace(cfg, reset_action_std=0.0, run_dir=tmp_path / "z"))


def test_episode_statistics_weigh_every_episode_the_same():
    from training.locomotion.train import episode_scalars

    timeouts = {"episodes_finished": 100.0, "episode_sum/fall_rate": 0.0, "episode_sum/lin_err": 20.0}
    one_fall = {"episodes_finished": 1.0, "episode_sum/fall_rate": 1.0, "episode_sum/lin_err": 0.9}
    logs = [timeouts, one_fall, one_fall, one_fall, {"curriculum/command_scale": 0.4}]
    s = episode_scalars(logs)
    assert s["episode/fall_rate"] == pytest.approx(3 / 103)  # not the mean of per-step rates (3/4)
    assert s["episode/lin_err"] == pytest.approx((20.0 + 2.7) / 103)
    assert s["episode/finished"] == 103 and s["curriculum/command_scale"] == 0.4
    assert "episode/fall_rate" not in episode_scalars([{"curriculum/command_scale": 0.3}])


def test_env_logs_sums_of_finished_episodes(tmp_path):
    trainer = Trainer(_cfg(tmp_path / "e", 1))
    env = trainer.env.env
    env.episode_length[:] = env.max_episode_length - 1  # every env times out on the next step
    _, _, _, _, info = env.step(torch.zeros(env.num_envs, 29))
    log = info["log"]
    assert log["episodes_finished"] == env.num_envs and log["episode_sum/fall_rate"] == 0.0
    assert log["episode_reward_sum/alive"] > 0.0


def test_legs_only_policy_exports_robot_wide_actions_and_starts_from_an_all_joint_run(tmp_path):
    from robot.g1 import constants as C
    from training.locomotion.rsl_env import full_actions, mirror_batch

    source = Trainer(dataclasses.replace(_cfg(tmp_path / "all", 1), actuated="all"))
    source.run()
    assert source.env.num_actions == 29
    cfg = dataclasses.replace(_cfg(tmp_path / "legs", 1), init_from=tmp_path / "all" / "model" / "weights.safetensors")
    legs = Trainer(cfg)
    assert legs.env.num_actions == 12
    obs = torch.randn(5, 98)
    full = source.ppo.get_policy().as_jit()(obs)
    from training.locomotion.train import action_joints, deterministic_actor

    exported = deterministic_actor(legs.ppo, action_joints(cfg))
    out = exported(obs)
    assert out.shape == (5, 29)
    assert torch.allclose(out[:, :12], full[:, :12], atol=1e-6)  # the source's leg rows carried over
    assert torch.all(out[:, 12:] == 0)  # waist and arms hold the default pose
    legs.run()
    assert torch.jit.load(str(tmp_path / "legs" / "export" / "actor.pt"))(obs)[:, 12:].abs().max() == 0

    # The mirror of leg actions is the leg part of the mirrored robot action.
    a = torch.randn(3, 12)
    _, mirrored = mirror_batch(legs.env, actions=a)
    robot = full_actions(a, C.LEG_JOINT_IDS)
    expected = robot[:, C.MIRROR_JOINT_INDEX.tolist()] * torch.tensor(C.MIRROR_JOINT_SIGN.tolist())
    assert torch.allclose(mirrored[3:], expected[:, :12])


def test_legs_only_run_initialises_a_legs_and_waist_run(tmp_path):
    """The added waist joints start at the default pose (mean 0) with their own small noise; the legs carry over."""
    from robot.g1 import constants as C
    from training.locomotion.train import action_joints, deterministic_actor

    legs = Trainer(_cfg(tmp_path / "legs", 1))
    legs.run()
    cfg = dataclasses.replace(
        _cfg(tmp_path / "waist", 1),
        actuated="legs_waist",
        init_from=tmp_path / "legs" / "model" / "weights.safetensors",
        added_joint_action_std=0.07,
    )
    waist = Trainer(cfg)
    assert waist.env.num_actions == 15 and action_joints(cfg) == tuple(C.LEG_JOINT_IDS) + tuple(C.WAIST_JOINT_IDS)
    obs = torch.randn(5, 98)
    before = deterministic_actor(legs.ppo, action_joints(legs.cfg))(obs)
    after = deterministic_actor(waist.ppo, action_joints(cfg))(obs)
    assert torch.allclose(after[:, :12], before[:, :12], atol=1e-6)
    assert torch.all(after[:, 12:] == 0)
    std = waist.ppo.get_policy().distribution.std_param.detach()
    assert torch.allclose(std[:12], legs.ppo.get_policy().distribution.std_param.detach())
    assert torch.allclose(std[12:], torch.full((3,), 0.07))
    waist.run()
    assert torch.jit.load(str(tmp_path / "waist" / "export" / "actor.pt"))(obs)[:, 15:].abs().max() == 0  # arms held

    with pytest.raises(ValueError, match="added_joint_action_std"):
        bad = dataclasses.replace(cfg, run_dir=tmp_path / "x", added_joint_action_std=0.0)
        Trainer(bad)


def test_residual_policy_on_the_reference_gait_exports_the_reference(tmp_path):
    cfg = dataclasses.replace(_cfg(tmp_path / "ref", 1), action_reference=1.0, residual_clip=0.5)
    cfg.env.rewards.ref_stride_scale = 1.0  # a reference that travels with the command
    trainer = Trainer(cfg)
    env = trainer.env.env
    obs = env.get_observations()["policy"]
    from robot.g1 import constants as C

    expected = env._ref_offsets(np.mod(env.phase()[:, None] + np.array([0.0, 0.5]), 1.0))
    assert np.abs(expected[:, [1, 2, 5]]).max() > 0  # the commands make hip roll / yaw strides too
    stepped = []
    original = env.step

    def record(actions):
        stepped.append(actions.clone())
        return original(actions)

    env.step = record
    with torch.no_grad():
        trainer.env.step(torch.zeros(env.num_envs, 12))
    reference = trainer.reference(obs)
    assert torch.equal(stepped[0], reference)  # zero residual = the reference gait
    # ... which is the reward's reference (read off the clock and command in the observation) as actions.
    np.testing.assert_allclose(reference.numpy() * C.ACTION_SCALE_RAD, expected, atol=1e-5)
    assert reference.abs().max() > 0 or env.phase().max() < 0.55  # some leg swings unless all stand in stance
    trainer.run()
    env_obs_before = env.get_observations()["policy"]
    exported = torch.jit.load(str(tmp_path / "ref" / "export" / "actor.pt"))
    policy_part = trainer.ppo.get_policy().as_jit()(obs)
    residual = torch.cat([policy_part.clamp(-0.5, 0.5), torch.zeros(len(obs), 17)], 1)
    assert torch.allclose(exported(obs), residual + reference, atol=1e-6)
    big = torch.full((env.num_envs, 12), 3.0)
    trainer.env.step(big)
    assert torch.allclose(stepped[-1][:, :12] - trainer.reference(env_obs_before)[:, :12], torch.full_like(big, 0.5))
    # The reference of a clock half a cycle later and the mirrored command is the left-right mirror image.
    later = obs.clone()
    later[:, 9:11] *= -1.0
    later[:, 7:9] *= -1.0
    mirrored = reference[:, C.MIRROR_JOINT_INDEX.tolist()] * torch.tensor(C.MIRROR_JOINT_SIGN.tolist())
    assert torch.allclose(trainer.reference(later), mirrored, atol=1e-6)


def test_max_action_std_bounds_the_noise_the_entropy_bonus_would_grow(tmp_path):
    # A large entropy bonus grows an unbounded std within a few updates; the bound holds it, in the sampled
    # actions' distribution and in the logged std.
    ppo = dataclasses.replace(_cfg(tmp_path, 1).ppo, entropy_coef=1.0, learning_rate=0.05, init_std=0.3)
    free = Trainer(dataclasses.replace(_cfg(tmp_path / "free", 3), ppo=ppo))
    free.run()
    assert float(free.ppo.get_policy().output_std.detach().mean()) > 0.35
    bounded_ppo = dataclasses.replace(ppo, max_action_std=0.3)
    bounded = Trainer(dataclasses.replace(_cfg(tmp_path / "bounded", 3), ppo=bounded_ppo))
    bounded.run()
    assert float(bounded.ppo.get_policy().output_std.detach().max()) <= 0.3 + 1e-6
    rows = (tmp_path / "bounded" / "metrics.csv").read_text().splitlines()[1:]
    assert all(float(r.split(",")[9]) <= 0.3 + 1e-6 for r in rows)  # action_std column
    with pytest.raises(ValueError, match="max_action_std"):
        PPOConfig(init_std=0.5, max_action_std=0.3)


def test_actions_beyond_the_residual_clip_pay_the_excess_penalty(tmp_path):
    # Two identical runs step with actions the clamp makes equal (0.5 and 3.0 -> 0.5): the environment cannot tell
    # them apart, the penalty can: 1.5 per second x dt x 12 joints x 2.5^2 less reward per env, and nothing at 0.5.
    def reward_of(value: float, penalty: float, name: str) -> torch.Tensor:
        cfg = dataclasses.replace(
            _cfg(tmp_path / name, 1), action_reference=1.0, residual_clip=0.5, residual_excess_penalty=penalty
        )
        trainer = Trainer(cfg)
        _, reward, _, extras = trainer.env.step(torch.full((trainer.env.num_envs, 12), value))
        return reward, extras["log"]

    inside, _ = reward_of(0.5, 1.5, "a")
    outside, log = reward_of(3.0, 1.5, "b")
    unpenalised, _ = reward_of(3.0, 0.0, "c")
    dt = LocomotionConfig().env.ctrl_dt_s
    torch.testing.assert_close(inside - outside, torch.full_like(inside, 1.5 * dt * 12 * 2.5**2))
    torch.testing.assert_close(unpenalised, inside)
    assert log["train/residual_beyond_clip"] == 1.0 and log["train/residual_excess"] == pytest.approx(12 * 2.5**2)
    with pytest.raises(ValueError, match="excess_penalty"):
        Trainer(dataclasses.replace(_cfg(tmp_path / "d", 1), residual_clip=0.5, residual_excess_penalty=-1.0))
