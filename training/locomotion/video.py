"""Render the walking expert following a scripted command sequence to an mp4 (offscreen MuJoCo).

    MUJOCO_GL=egl python -m training.locomotion.video --out outputs/g1_walk.mp4 [--policy assets/g1_walk/actor.pt]

Needs the ``video`` extra (imageio + imageio-ffmpeg, whose wheel carries ffmpeg) and an offscreen GL backend:
``MUJOCO_GL=egl`` (set by default here when unset) or ``osmesa`` (Debian's ``libosmesa6``). The camera follows the
pelvis; the current command is printed on the frame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from robot.cli import run_cli

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported: it picks the GL backend at import time

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
import torch
import tyro
from PIL import Image, ImageDraw
from tqdm import tqdm

from envs.g1.vec_env import DomainRandomizationConfig
from envs.locomotion.config import CommandConfig, LocomotionConfig
from envs.locomotion.env import G1LocomotionEnv
from training.locomotion.evaluate import DEFAULT_EXPERT_POLICY, Conditions, FixedConditionsEnv, load_exported_policy

DEFAULT_SCRIPT: tuple[tuple[float, float, float, float], ...] = (
    (2.0, 0.0, 0.0, 0.0),
    (4.0, 0.6, 0.0, 0.0),
    (3.0, 0.4, 0.0, 0.8),
    (3.0, 0.0, 0.3, 0.0),
    (3.0, -0.4, 0.0, 0.0),
    (3.0, 0.0, 0.0, -1.0),
    (2.0, 0.0, 0.0, 0.0),
)
"""(duration s, vx m/s, vy m/s, yaw rate rad/s): stand, walk, curve, side-step, back up, turn, stand."""


@dataclass
class VideoConfig:
    """Scripted-command video of a walking policy."""

    out: Path = Path("outputs/g1_walk.mp4")
    """Output mp4."""
    policy: Path = DEFAULT_EXPERT_POLICY
    """Exported actor (its training config.json beside it)."""
    script: tuple[tuple[float, float, float, float], ...] = field(default_factory=lambda: DEFAULT_SCRIPT)
    """Command segments: (duration s, vx, vy, yaw rate)."""
    width: int = 480
    """Frame width (pixels)."""
    height: int = 360
    """Frame height (pixels)."""
    fps: int = 25
    """Video frame rate (a divisor of the 50 Hz control rate)."""
    seed: int = 0
    """Seed of the initial state and observation noise."""

    def __post_init__(self) -> None:
        if not self.script or any(len(s) != 4 or s[0] <= 0.0 for s in self.script):
            raise ValueError(f"script: expected (duration > 0, vx, vy, yaw_rate) segments, got {self.script}")
        if self.width < 16 or self.height < 16 or self.fps < 1:
            raise ValueError(f"width, height >= 16 and fps >= 1 expected, got {self.width}x{self.height} @ {self.fps}")


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    image = Image.fromarray(frame)
    ImageDraw.Draw(image).text((8, 8), text, fill=(255, 255, 255))
    return np.asarray(image)


class FrameRecorder:
    """Offscreen frames of world 0 of a G1 environment, camera following the pelvis, written to an mp4.

    ``with FrameRecorder(env, out, ...) as rec:`` then ``rec.capture(text)`` after every control step (it keeps
    every ``1 / (fps * ctrl_dt)``-th); the file appears at ``out`` only when the block ends without an error.
    """

    def __init__(self, env: G1LocomotionEnv, out: Path, width: int = 480, height: int = 360, fps: int = 25) -> None:
        try:
            import imageio.v2 as imageio
        except ImportError as exc:
            raise ImportError("videos need the video extra: pip install -e '.[video]'") from exc
        self._imageio = imageio
        self.env, self.out = env, out
        dt = env.cfg.env.ctrl_dt_s
        self.every = max(1, round(1.0 / (fps * dt)))
        self.fps = round(1.0 / (self.every * dt))
        model = env.models[0]
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self.renderer = mujoco.Renderer(model, height, width)
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = model.body("pelvis").id
        self.camera.distance, self.camera.elevation, self.camera.azimuth = 3.0, -15.0, 135.0
        self.tmp = out.with_name(out.stem + ".tmp" + out.suffix)

    def __enter__(self) -> FrameRecorder:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.writer = self._imageio.get_writer(self.tmp, fps=self.fps, codec="libx264", macro_block_size=8)
        return self

    def capture(self, text: str) -> None:
        """Add world 0's current frame with ``text`` on it, when this control step is on the frame grid."""
        if self.env.episode_length[0] % self.every == 0:
            self.renderer.update_scene(self.env.env_data(0), self.camera)
            self.writer.append_data(_label(self.renderer.render(), text))

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.writer.close()
            if exc_type is None:
                os.replace(self.tmp, self.out)
        finally:
            self.renderer.close()
            self.tmp.unlink(missing_ok=True)


def scripted_env_config(
    train: LocomotionConfig, script: tuple[tuple[float, float, float, float], ...], seed: int
) -> LocomotionConfig:
    """One world of the training task for a scripted run: no randomization or pushes, no command resampling (the
    caller sets ``env.command``), long enough for the whole script."""
    return dataclasses.replace(
        train,
        num_envs=1,
        num_threads=1,
        randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0),
        episode_length_s=sum(s[0] for s in script) + 1.0,
        commands=CommandConfig(resample_interval_s=(1e9, 1e9), curriculum_step=0.0),
        seed=seed,
    )


def render_video(cfg: VideoConfig) -> Path:
    """Roll out the policy on the scripted commands and write the mp4; returns its path."""
    policy, train = load_exported_policy(cfg.policy)
    env = FixedConditionsEnv(scripted_env_config(train, cfg.script, cfg.seed), Conditions())
    dt = env.cfg.env.ctrl_dt_s
    steps = [(seg, round(seg[0] / dt)) for seg in cfg.script]
    obs = env.get_observations()["policy"]
    fell = False
    try:
        with FrameRecorder(env, cfg.out, cfg.width, cfg.height, cfg.fps) as rec:
            bar = tqdm(total=sum(n for _, n in steps), desc="video", unit="step")
            for (_, vx, vy, wz), n in steps:
                for _ in range(n):
                    env.command[0] = (vx, vy, wz)
                    with torch.inference_mode():
                        actions = policy(obs)
                    groups, _, terminated, _, _ = env.step(actions)
                    obs = groups["policy"]
                    fell |= bool(terminated[0])
                    rec.capture(f"cmd vx {vx:+.1f} vy {vy:+.1f} wz {wz:+.1f}" + ("  FELL" if fell else ""))
                    bar.update(1)
            bar.close()
    finally:
        env.close()
    return cfg.out


def main(cfg: VideoConfig) -> None:
    """CLI entry point."""
    path = render_video(cfg)
    print(f"{path}: {sum(s[0] for s in cfg.script):.0f} s of scripted commands at {cfg.fps} fps")


def cli(args: Sequence[str] | None = None) -> int:
    """The command ``steer-video``: a user's mistake is one line and exit code 2 (``--debug``: traceback)."""
    return run_cli(lambda argv, prog: main(tyro.cli(VideoConfig, args=argv, prog=prog)), args)


if __name__ == "__main__":
    sys.exit(cli())
