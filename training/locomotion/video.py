"""Render the walking expert following a scripted command sequence to an mp4 (offscreen MuJoCo).

    MUJOCO_GL=egl python -m training.locomotion.video --out outputs/g1_walk.mp4 [--policy assets/g1_walk/policy.pt]

Needs the ``video`` extra (imageio + imageio-ffmpeg, whose wheel carries ffmpeg) and an offscreen GL backend:
``MUJOCO_GL=egl`` (set by default here when unset) or ``osmesa`` (Debian's ``libosmesa6``). The camera follows the
pelvis; the current command is printed on the frame.
"""

from __future__ import annotations

import os

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

from envs.locomotion import CommandConfig
from envs.vec_env import DomainRandomizationConfig
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


def render_video(cfg: VideoConfig) -> Path:
    """Roll out the policy on the scripted commands and write the mp4; returns its path."""
    try:
        import imageio.v2 as imageio
    except ImportError as exc:
        raise ImportError("videos need the video extra: pip install -e '.[video]'") from exc
    policy, train = load_exported_policy(cfg.policy)
    env_cfg = dataclasses.replace(
        train,
        num_envs=1,
        num_threads=1,
        randomization=DomainRandomizationConfig(enabled=False, push_interval_s=0.0),
        episode_length_s=sum(s[0] for s in cfg.script) + 1.0,
        commands=CommandConfig(resample_interval_s=(1e9, 1e9), curriculum_step=0.0),
        seed=cfg.seed,
    )
    env = FixedConditionsEnv(env_cfg, Conditions())
    dt = env.cfg.env.ctrl_dt_s
    every = max(1, round(1.0 / (cfg.fps * dt)))
    model = env.models[0]
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, cfg.width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, cfg.height)
    renderer = mujoco.Renderer(model, cfg.height, cfg.width)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = model.body("pelvis").id
    camera.distance, camera.elevation, camera.azimuth = 3.0, -15.0, 135.0
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.out.with_name(cfg.out.stem + ".tmp" + cfg.out.suffix)
    steps = [(seg, round(seg[0] / dt)) for seg in cfg.script]
    obs = env.get_observations()["policy"]
    fell = False
    try:
        with imageio.get_writer(tmp, fps=round(1.0 / (every * dt)), codec="libx264", macro_block_size=8) as writer:
            bar = tqdm(total=sum(n for _, n in steps), desc="video", unit="step")
            for (_, vx, vy, wz), n in steps:
                for _ in range(n):
                    env.command[0] = (vx, vy, wz)
                    with torch.inference_mode():
                        actions = policy(obs)
                    groups, _, terminated, _, _ = env.step(actions)
                    obs = groups["policy"]
                    fell |= bool(terminated[0])
                    if env.episode_length[0] % every == 0:
                        renderer.update_scene(env.env_data(0), camera)
                        text = f"cmd vx {vx:+.1f} vy {vy:+.1f} wz {wz:+.1f}" + ("  FELL" if fell else "")
                        writer.append_data(_label(renderer.render(), text))
                    bar.update(1)
            bar.close()
        os.replace(tmp, cfg.out)
    finally:
        renderer.close()
        env.close()
        tmp.unlink(missing_ok=True)
    return cfg.out


def main(cfg: VideoConfig) -> None:
    """CLI entry point."""
    path = render_video(cfg)
    print(f"{path}: {sum(s[0] for s in cfg.script):.0f} s of scripted commands at {cfg.fps} fps")


if __name__ == "__main__":
    main(tyro.cli(VideoConfig))
