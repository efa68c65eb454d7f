"""PNG plots of offline safe RL, drawn with Pillow (no plotting library needed): a dataset's episode return against
episode cost, and policies' normalized reward against normalized cost with the cost limit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from robot.files import atomic_write

PALETTE = [  # matplotlib's tab10: DSRL-size builds have 7 agents, each gets its own colour
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def scatter_image(
    xs: np.ndarray,
    ys: np.ndarray,
    groups: np.ndarray,
    labels: Sequence[str],
    title: str,
    x_label: str,
    y_label: str,
    vline: float | None = None,
    dot: int = 3,
    size: tuple[int, int] = (800, 560),
) -> Image.Image:
    """A scatter of ``(xs, ys)`` coloured by ``groups`` (indices into ``labels``), with a legend and axis ticks;
    ``vline`` draws a dashed vertical line there (and the x range includes it)."""
    width, height = size
    left, right, top, bottom = 80, 150, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    x_hi = max(float(xs.max()) if len(xs) else 1.0, vline * 1.2 if vline is not None else 0.0, 1.0) * 1.05
    x_lo = -0.03 * x_hi  # keeps the zero-cost dots off the frame
    y_lo, y_hi = (float(ys.min()), float(ys.max())) if len(ys) else (0.0, 1.0)
    span = max(y_hi - y_lo, 0.1 * max(abs(y_lo), abs(y_hi), 1.0))  # a lone point sits in a readable range
    middle = (y_lo + y_hi) / 2
    y_lo, y_hi = middle - 0.54 * span, middle + 0.54 * span

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_lo) / (x_hi - x_lo) * (width - left - right)
        return px, height - bottom - (y - y_lo) / (y_hi - y_lo) * (height - top - bottom)

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    digits = 0 if y_hi - y_lo >= 20 else 2 if y_hi - y_lo >= 0.2 else 3
    for tick in range(6):
        x, y = x_lo + (x_hi - x_lo) * tick / 5, y_lo + (y_hi - y_lo) * tick / 5
        px, _ = to_px(x, y_lo)
        _, py = to_px(x_lo, y)
        draw.line((px, height - bottom, px, height - bottom + 5), fill="black")
        draw.text((px - 12, height - bottom + 8), f"{x:.{0 if x_hi >= 20 else 1}f}", fill="black", font=font)
        draw.line((left - 5, py, left, py), fill="black")
        draw.text((8, py - 6), f"{y:.{digits}f}", fill="black", font=font)
    if vline is not None:
        px, _ = to_px(vline, y_lo)
        for y0 in range(top, height - bottom, 12):
            draw.line((px, y0, px, min(y0 + 6, height - bottom)), fill=(120, 120, 120))
    for x, y, g in zip(xs, ys, groups, strict=True):
        px, py = to_px(float(x), float(y))
        draw.ellipse((px - dot, py - dot, px + dot, py + dot), fill=PALETTE[int(g) % len(PALETTE)])
    for g, label in enumerate(labels):
        y = top + 10 + 18 * g
        draw.ellipse((width - right + 15, y, width - right + 23, y + 8), fill=PALETTE[g % len(PALETTE)])
        draw.text((width - right + 30, y - 2), label, fill="black", font=font)
    draw.text((left, 6), title, fill="black", font=font)
    draw.text(((width - right + left) // 2 - 40, height - 25), x_label, fill="black", font=font)
    draw.text((8, top - 16), y_label, fill="black", font=font)
    return image


def save_png(path: Path, image: Image.Image) -> Path:
    """Write ``image`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def plot_return_vs_cost(
    path: Path, returns: np.ndarray, costs: np.ndarray, groups: np.ndarray, labels: list[str], title: str
) -> Path:
    """A PNG scatter of episode return (y) against episode cost (x), one dot per trajectory, coloured by group."""
    return save_png(path, scatter_image(costs, returns, groups, labels, title, "episode cost", "episode return"))


def plot_reward_vs_cost(
    path: Path,
    points: Sequence[tuple[str, float, float]],
    title: str,
    beside: Path | None = None,
) -> Path:
    """Normalized reward (y) against normalized cost (x), one dot per ``(algorithm, cost, reward)`` point, the cost
    limit (normalized cost 1) dashed; with ``beside`` (a PNG, e.g. the dataset's return-cost scatter) the two
    images side by side."""
    labels = list(dict.fromkeys(name for name, _, _ in points))
    xs = np.array([c for _, c, _ in points], dtype=np.float64)
    ys = np.array([r for _, _, r in points], dtype=np.float64)
    groups = np.array([labels.index(name) for name, _, _ in points], dtype=np.int64)
    image = scatter_image(
        xs, ys, groups, labels, title, "normalized cost (1 = cost limit)", "normalized reward", vline=1.0, dot=5
    )
    if beside is not None:
        other = Image.open(beside).convert("RGB")
        scale = image.height / other.height
        other = other.resize((round(other.width * scale), image.height))
        both = Image.new("RGB", (image.width + other.width, image.height), "white")
        both.paste(image, (0, 0))
        both.paste(other, (image.width, 0))
        image = both
    return save_png(path, image)
