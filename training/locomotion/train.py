"""Train the G1 walking expert with rsl-rl-lib's PPO on the vectorized MuJoCo env.

    python -m training.locomotion.train --run-dir runs/g1_walk --iterations 3000
    python -m training.locomotion.train --run-dir runs/g1_walk --resume   # after a stop or kill: the run's options
    python -m training.locomotion.train --preset g1-walk --run-dir runs/my_walk   # the committed expert's recipe

Options, presets and what ``--resume`` may change are in :mod:`training.locomotion.config`.

The PPO update, rollout storage, observation normalisation and symmetry augmentation are rsl-rl-lib's
(:class:`rsl_rl.algorithms.PPO`); this module drives its loop (collect ``num_steps_per_env`` steps of every env,
compute returns, update) so that it can checkpoint and resume exactly.

Run folder (:mod:`training.run_dir`): ``config.json``, ``tb/`` (TensorBoard), ``metrics.csv`` (one row per iteration:
env steps, wall time, reward, tracking errors, fall rate, curriculum scale), ``eval.csv`` (the periodic evaluations),
``checkpoints/last.pt`` (every ``save_every`` iterations and at the end; atomic), ``model/weights.{safetensors,json}``
(the networks alone, for ``--init-from``) and ``export/actor.pt`` + ``export/actor_meta.json`` (the deterministic
actor as TorchScript with what the deploy exporter needs). A checkpoint holds the PPO state (networks,
normalisers, optimizer, adaptive learning rate), the environment state (physics, commands, randomized models,
curriculum, RNG) and the torch and numpy RNG states, so ``--resume`` continues the same trajectory as an
uninterrupted run would.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from envs.locomotion.env import EPISODE_REWARD_SUM, EPISODE_SUM, EPISODES_FINISHED, G1LocomotionEnv
from policies.model_file import save_model_file
from robot.configio import to_jsonable
from robot.files import atomic_write, atomic_write_text
from robot.g1 import constants as C
from training.checkpoint import (
    arrays_to_tensors,
    load_checkpoint,
    save_checkpoint,
    tensors_to_arrays,
    truncate_log_rows,
)
from training.locomotion.config import PRESETS, RESUME_MAY_CHANGE, TrainConfig, read_run_config
from training.locomotion.config import PPOConfig as PPOConfig  # re-exported: callers import it from here
from training.locomotion.evaluate import Conditions, EvalConfig, EvalResult, actuated_joint_ids, evaluate
from training.locomotion.rsl_env import (
    RESIDUAL_BEYOND_CLIP,
    RESIDUAL_EXCESS,
    FullActionActor,
    RslLocomotionEnv,
    build_ppo,
)
from training.run_config import check_resume, trainer_cli
from training.run_dir import RunDir
from training.stop import graceful_stop

EVAL_FIELDS = ("iteration", "env_steps", "fall_rate", "lin_err", "yaw_err", "ok")
METRIC_FIELDS = (
    "iteration",
    "env_steps",
    "wall_s",
    "steps_per_s",
    "mean_reward",
    "lin_err",
    "yaw_err",
    "fall_rate",
    "command_scale",
    "action_std",
    "learning_rate",
)


def episode_scalars(logs: list[dict[str, float]]) -> dict[str, float]:
    """An iteration's per-step env logs as per-episode means (every finished episode weighs the same) plus the
    last curriculum scale."""
    finished = sum(log.get(EPISODES_FINISHED, 0.0) for log in logs)
    totals: dict[str, float] = {}
    for log in logs:
        for k, v in log.items():
            if k.startswith((EPISODE_SUM, EPISODE_REWARD_SUM)):
                totals[k] = totals.get(k, 0.0) + v
    out = {
        k.replace(EPISODE_SUM, "episode/").replace(EPISODE_REWARD_SUM, "episode_reward/"): v / finished
        for k, v in totals.items()
    }
    if finished:
        out["episode/finished"] = finished
    for key in (RESIDUAL_EXCESS, RESIDUAL_BEYOND_CLIP):
        values = [log[key] for log in logs if key in log]
        if values:
            out[key] = float(np.mean(values))
    scales = [log["curriculum/command_scale"] for log in logs if "curriculum/command_scale" in log]
    if scales:
        out["curriculum/command_scale"] = scales[-1]
    return out


def policy_metadata(cfg: TrainConfig) -> dict[str, Any]:
    """What the deploy exporter needs besides the network (observation layout, gait clock, command ranges)."""
    c = cfg.env.commands
    obs = cfg.env.env.obs
    return {
        "joint_names": list(C.JOINT_NAMES),
        "control_dt_s": cfg.env.env.ctrl_dt_s,
        "action_clip": cfg.env.env.action_clip,
        "obs_ang_vel_scale": obs.ang_vel_scale,
        "obs_joint_vel_scale": obs.joint_vel_scale,
        "obs_clip": obs.clip,
        "obs_gait_period_s": obs.gait_period_s,
        "command_low": [c.vx_range_m_per_s[0], c.vy_range_m_per_s[0], c.yaw_rate_range_rad_per_s[0]],
        "command_high": [c.vx_range_m_per_s[1], c.vy_range_m_per_s[1], c.yaw_rate_range_rad_per_s[1]],
        "history_length": 1,
    }


def action_joints(cfg: TrainConfig) -> tuple[int, ...]:
    """Indices of the joints the policy of ``cfg`` drives."""
    return actuated_joint_ids(cfg.actuated)


def noise_param_value(name: str, std: float) -> float | None:
    """What the action-noise parameter ``name`` of an rsl-rl actor stores for noise std ``std`` (``std_param``: the
    std, ``log_std_param``: its log); None when ``name`` is not a noise parameter."""
    if name.endswith("log_std_param"):
        return float(np.log(std))
    if name.endswith("std_param"):
        return std
    return None


def deterministic_actor(
    ppo: Any,
    joints: tuple[int, ...] = tuple(range(C.NUM_JOINTS)),
    reference: torch.nn.Module | None = None,
    residual_clip: float | None = None,
) -> torch.jit.ScriptModule:
    """The actor's mean action with its observation normaliser, scripted on the CPU (what is exported); its output
    covers all robot joints, with zeros where the policy drives none of ``joints``, plus the ``reference`` gait
    its actions are residuals on (if any)."""
    actor = ppo.get_policy().as_jit().to("cpu").eval()
    if list(joints) != list(range(C.NUM_JOINTS)) or reference is not None or residual_clip is not None:
        actor = FullActionActor(actor, joints, reference, residual_clip).eval()
    return torch.jit.script(actor)


def export_actor(module: torch.jit.ScriptModule, cfg: TrainConfig, run_dir: Path) -> Path:
    """Write the deterministic actor ``module`` (:func:`deterministic_actor`) to the run's ``export/actor.pt``, with
    ``export/actor_meta.json`` (``python -m deploy.import_expert`` turns the two into a deploy ``policy.pt``)."""
    run = RunDir(run_dir)
    path = atomic_write(run.export("actor.pt"), lambda tmp: torch.jit.save(module, tmp))
    atomic_write_text(run.export("actor_meta.json"), json.dumps(policy_metadata(cfg), indent=2) + "\n")
    return path


class Trainer:
    """One training run (see module docstring)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.run_dir = run = RunDir(cfg.run_dir)
        if cfg.resume and run.config.is_file():
            check_resume(read_run_config(cfg.run_dir), cfg, RESUME_MAY_CHANGE, run.config)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(cfg.torch_threads)
        env_cfg = dataclasses.replace(cfg.env, seed=cfg.seed)
        env = G1LocomotionEnv(env_cfg)
        self.reference = env.swing_reference(cfg.action_reference) if cfg.action_reference != 0.0 else None
        self.env = RslLocomotionEnv(
            env, cfg.device, action_joints(cfg), self.reference, cfg.residual_clip, cfg.residual_excess_penalty
        )
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        self.ppo = build_ppo(self.env, cfg.ppo)
        self.iteration = 0
        self.env_steps = 0
        self.wall_s = 0.0
        if cfg.resume:
            self._load(run.resume_checkpoint())
        else:
            if cfg.init_from is not None:
                self._init_networks(cfg.init_from, cfg.reset_action_std)
            run.start(json.dumps(to_jsonable(cfg), indent=2) + "\n", METRIC_FIELDS)
            atomic_write_text(cfg.run_dir / "eval.csv", ",".join(EVAL_FIELDS) + "\n")

    # ----- checkpoints ----------------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The full training state."""
        return {
            "ppo": self.ppo.save(),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "wall_s": self.wall_s,
            "env": arrays_to_tensors(self.env.env.state_dict()),  # numpy arrays as tensors: nothing to unpickle
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": arrays_to_tensors(np.random.get_state()),
            "python_rng": random.getstate(),
            "config": to_jsonable(self.cfg),
        }

    def save(self) -> Path:
        """Write checkpoints/last.pt and model/weights.{safetensors,json} (the networks alone, for ``init_from``)
        atomically; export
        the actor."""
        state = self.checkpoint()
        path = save_checkpoint(state, self.run_dir.last)
        networks = {k: state["ppo"][k] for k in ("actor_state_dict", "critic_state_dict")}  # no optimizer state
        weights = {"ppo": networks, **{k: state[k] for k in ("iteration", "env_steps", "config")}}
        save_model_file(self.run_dir.model("weights.safetensors"), weights)
        export_actor(self.deterministic_actor(), self.cfg, self.cfg.run_dir)
        return path

    def _init_networks(self, path: Path, action_std: float | None) -> None:
        data = load_checkpoint(path)
        if "ppo" not in data:
            raise ValueError(f"{path}: not a locomotion training checkpoint (no 'ppo' entry)")
        ppo_state = data["ppo"]
        source = data.get("config", {}).get("actuated", "all")  # runs before the option drove all joints
        if source != self.cfg.actuated:
            try:
                source_joints = actuated_joint_ids(source)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
            actor = self._map_actor_outputs(ppo_state["actor_state_dict"], source_joints)
            ppo_state = {**ppo_state, "actor_state_dict": actor}
        try:
            self.ppo.load(ppo_state, load_cfg={"actor": True, "critic": True}, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{path}: its networks do not fit this run's config: {err}") from err
        if action_std is not None:
            self._check_action_std("reset_action_std", action_std)
            with torch.no_grad():
                for name, param in self.ppo.get_policy().distribution.named_parameters():
                    value = noise_param_value(name, action_std)
                    if value is not None:
                        param.fill_(value)

    def _check_action_std(self, option: str, std: float) -> None:
        bound = self.cfg.ppo.max_action_std
        if std <= 0.0 or (bound is not None and std > bound):
            raise ValueError(f"{option}: expected in (0, ppo.max_action_std={bound}], got {std}")

    def _map_actor_outputs(
        self, state: dict[str, torch.Tensor], source_joints: tuple[int, ...]
    ) -> dict[str, torch.Tensor]:
        """An actor's weights for ``source_joints`` re-laid onto this run's driven joints: the output layer and noise
        rows of shared joints are copied, rows of joints the source did not drive start at mean 0 (its default pose)
        with noise std ``added_joint_action_std``, and rows of joints this run does not drive are dropped."""
        std = self.cfg.added_joint_action_std
        self._check_action_std("added_joint_action_std", std)
        ours = self.ppo.get_policy().state_dict()
        joints = list(action_joints(self.cfg))
        rows = [(k, source_joints.index(j)) for k, j in enumerate(joints) if j in source_joints]
        out = {}
        for name, value in state.items():
            mine = ours.get(name)
            if mine is not None and value.shape != mine.shape and value.shape[0] == len(source_joints):
                if mine.shape[0] != len(joints) or mine.shape[1:] != value.shape[1:]:
                    raise ValueError(f"init_from: {name} has shape {tuple(value.shape)}, this run {tuple(mine.shape)}")
                fill = noise_param_value(name, std)
                mapped = torch.full(mine.shape, 0.0 if fill is None else fill, dtype=value.dtype)
                for k, src in rows:
                    mapped[k] = value[src]
                value = mapped
            out[name] = value
        return out

    def _load(self, path: Path) -> None:
        data = load_checkpoint(path)
        for key in ("ppo", "iteration", "env", "torch_rng"):
            if key not in data:
                raise ValueError(f"{path}: not a locomotion training checkpoint (no {key!r} entry)")
        self.ppo.load(data["ppo"], load_cfg=None, strict=True)
        self.iteration = int(data["iteration"])
        self.env_steps = int(data["env_steps"])
        self.wall_s = float(data["wall_s"])
        self.env.env.load_state_dict(tensors_to_arrays(data["env"]))
        torch.set_rng_state(data["torch_rng"])
        np.random.set_state(tensors_to_arrays(data["numpy_rng"]))
        random.setstate(data["python_rng"])
        truncate_log_rows(self.run_dir.metrics, self.iteration, METRIC_FIELDS)
        truncate_log_rows(self.cfg.run_dir / "eval.csv", self.iteration, EVAL_FIELDS)

    def deterministic_actor(self) -> torch.jit.ScriptModule:
        """This run's exported actor: robot-wide actions, with the reference gait and residual bound if any."""
        return deterministic_actor(self.ppo, action_joints(self.cfg), self.reference, self.cfg.residual_clip)

    def evaluate_actor(self) -> EvalResult:
        """The deterministic actor on ``eval_episodes`` nominal episodes (the training RNG streams untouched)."""
        cfg = self.cfg
        actor = self.deterministic_actor()
        ecfg = EvalConfig(
            episodes=cfg.eval_episodes,
            episode_length_s=cfg.eval_seconds,
            num_threads=cfg.env.num_threads,
            seed=12345,
            train=cfg.env,
        )
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            result = evaluate(actor, ecfg, Conditions(name="periodic"), progress=False)
        np.random.set_state(np_state)
        random.setstate(py_state)
        return result

    def _log_evaluation(self, writer: SummaryWriter, rows: Any) -> None:
        r = self.evaluate_actor()
        for k in ("fall_rate", "lin_err_m_per_s", "yaw_err_rad_per_s", "foot_air_fraction", "touchdowns_per_s"):
            writer.add_scalar(f"eval/{k}", getattr(r, k), self.iteration)
        rows.writerow([self.iteration, self.env_steps, r.fall_rate, r.lin_err_m_per_s, r.yaw_err_rad_per_s, r.ok])
        tqdm.write(
            f"iteration {self.iteration} ({self.env_steps / 1e6:.1f} M steps) evaluation: fall "
            f"{100 * r.fall_rate:.0f} %, v err {r.lin_err_m_per_s:.3f} m/s, yaw err {r.yaw_err_rad_per_s:.3f} rad/s, "
            f"feet in the air {100 * r.foot_air_fraction:.0f} %, {r.touchdowns_per_s:.2f} touchdowns/s"
        )

    # ----- loop -----------------------------------------------------------------------------------------------
    def iterate(self) -> dict[str, float]:
        """One PPO iteration (collect, returns, update); returns its logged scalars."""
        ppo, env = self.ppo, self.env
        steps = self.cfg.ppo.num_steps_per_env
        t0 = time.perf_counter()
        obs = env.get_observations()
        rewards, logs = [], []
        ppo.train_mode()
        with torch.inference_mode():
            for _ in range(steps):
                actions = ppo.act(obs)
                obs, reward, dones, extras = env.step(actions)
                ppo.process_env_step(obs, reward, dones, extras)
                rewards.append(float(reward.mean()))
                logs.append(extras["log"])
            ppo.compute_returns(obs)
        t1 = time.perf_counter()
        losses = ppo.update()
        t2 = time.perf_counter()
        self.iteration += 1
        self.env_steps += steps * env.num_envs
        self.wall_s += t2 - t0
        scalars: dict[str, float] = {f"loss/{k}": float(v) for k, v in losses.items() if v is not None}
        scalars.update(episode_scalars(logs))
        scalars["perf/steps_per_s"] = steps * env.num_envs / (t2 - t0)
        scalars["perf/collect_s"] = t1 - t0
        scalars["perf/learn_s"] = t2 - t1
        scalars["train/mean_step_reward"] = float(np.mean(rewards))
        scalars["train/action_std"] = float(ppo.get_policy().output_std.detach().mean())
        scalars["train/learning_rate"] = float(ppo.learning_rate)
        return scalars

    def _metrics_row(self, s: dict[str, float]) -> list[Any]:
        return [
            self.iteration,
            self.env_steps,
            round(self.wall_s, 2),
            round(s["perf/steps_per_s"], 1),
            s["train/mean_step_reward"],
            s.get("episode/lin_err", float("nan")),
            s.get("episode/yaw_err", float("nan")),
            s.get("episode/fall_rate", float("nan")),
            s.get("curriculum/command_scale", float("nan")),
            s["train/action_std"],
            s["train/learning_rate"],
        ]

    def run(self) -> Path:
        """Train up to ``cfg.iterations`` (or ``max_minutes``), checkpointing; returns the last checkpoint.

        SIGINT or SIGTERM (Ctrl-C, a scheduler's preemption) ends the current iteration, writes the checkpoint
        and returns, so ``--resume`` loses nothing.
        """
        cfg = self.cfg
        writer = SummaryWriter(log_dir=str(self.run_dir.tb), purge_step=self.iteration)
        start = time.monotonic()
        bar = tqdm(total=cfg.iterations, initial=self.iteration, desc="PPO", unit="it", dynamic_ncols=True)
        last = self.run_dir.last
        try:
            with (
                graceful_stop() as stop,
                self.run_dir.metrics.open("a", newline="") as handle,
                (cfg.run_dir / "eval.csv").open("a", newline="") as eval_handle,
            ):
                rows, eval_rows = csv.writer(handle), csv.writer(eval_handle)
                while self.iteration < cfg.iterations:
                    s = self.iterate()
                    for k, v in s.items():
                        writer.add_scalar(k, v, self.iteration)
                    rows.writerow(self._metrics_row(s))
                    handle.flush()
                    bar.update(1)
                    bar.set_postfix(
                        r=f"{s['train/mean_step_reward']:.3f}",
                        err=f"{s.get('episode/lin_err', float('nan')):.2f}",
                        fall=f"{s.get('episode/fall_rate', float('nan')):.2f}",
                        cmd=f"{s.get('curriculum/command_scale', float('nan')):.2f}",
                        out=f"{s.get(RESIDUAL_BEYOND_CLIP, float('nan')):.2f}",
                        sps=f"{s['perf/steps_per_s']:.0f}",
                    )
                    if cfg.eval_every > 0 and self.iteration % cfg.eval_every == 0:
                        self._log_evaluation(writer, eval_rows)
                        eval_handle.flush()
                    out_of_time = cfg.max_minutes is not None and time.monotonic() - start > 60.0 * cfg.max_minutes
                    halt = out_of_time or stop.signal is not None
                    if self.iteration % cfg.save_every == 0 or self.iteration == cfg.iterations or halt:
                        last = self.save()
                    if halt:
                        why = f"after {cfg.max_minutes} min" if out_of_time else f"on signal {stop.signal}"
                        tqdm.write(f"stopping {why} at iteration {self.iteration}: {last}")
                        break
        finally:
            bar.close()
            writer.close()
        return last


def main(cfg: TrainConfig) -> None:
    """CLI entry point."""
    trainer = Trainer(cfg)
    where = "resumed at" if cfg.resume else "starting at"
    print(
        f"G1 walking PPO: {cfg.env.num_envs} envs x {cfg.ppo.num_steps_per_env} steps per iteration, "
        f"{where} iteration {trainer.iteration}/{cfg.iterations}, run folder {cfg.run_dir}"
    )
    path = trainer.run()
    print(f"checkpoint: {path}; actor: {RunDir(cfg.run_dir).export('actor.pt')}")


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-train-walk``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return trainer_cli(
        TrainConfig,
        main,
        args,
        run_config=read_run_config,
        may_change=RESUME_MAY_CHANGE,
        presets=PRESETS,
        description="Train the G1 walking expert with PPO.",
    )


if __name__ == "__main__":
    sys.exit(cli())
