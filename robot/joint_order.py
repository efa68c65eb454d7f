"""Compare a list of joint names with the expected one: what is missing, what is extra, where the order breaks.

Shared by the MJCF loader (a user's G1 model against SDK motor order) and the policy-robot check (an exported
policy's joints against the robot's), which word their reports for their own readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class JointListDifferences:
    """How ``found`` differs from ``expected``."""

    missing: list[str]
    """Expected names that ``found`` lacks, in expected order."""
    extra: list[str]
    """Names in ``found`` that are not expected, in found order."""
    first_out_of_order: int | None
    """With the same set of names, the first index where the orders differ; None otherwise."""

    @property
    def same(self) -> bool:
        """Same names in the same order."""
        return not self.missing and not self.extra and self.first_out_of_order is None


def joint_list_differences(found: Sequence[str], expected: Sequence[str]) -> JointListDifferences:
    """Missing and extra names, and (when the sets agree) the first index where the order breaks."""
    found, expected = list(found), list(expected)
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    first = None
    if not missing and not extra and found != expected:
        first = next(i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
    return JointListDifferences(missing, extra, first)
