"""Is a change between two released numbers larger than the noise? One rule, stated once.

Why a module for a few lines: the summary on page one, the month-over-month table and the
report's own explanation must use the same rule and the same words, or a reader would find a
change called "real" in one place and "noise" in another.

The rule: each released value has a 95 % interval; we read its half-width as 1.96 standard
deviations (sd = half-width / 1.96). The difference of two independent releases has standard
deviation sqrt(sd_a² + sd_b²), so a change counts as larger than the noise when
|b − a| > 1.96 · sqrt(sd_a² + sd_b²). This is less strict (and more correct) than asking the
two intervals not to overlap, which only happens when |b − a| > 1.96 · (sd_a + sd_b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cleanroom.reports.results import Measure

Z95 = 1.96

RULE_TEXT = (
    "A change counts as larger than the noise when it exceeds 1.96 × √(sd₁² + sd₂²), where each "
    "number's sd is half the width of its 95 % interval divided by 1.96 (a 95 % test on the "
    "difference). Smaller changes may be real, but the blurring alone could produce them."
)
RULE_SHORT = "● larger than the noise: |change| > 1.96 × √(sd₁² + sd₂²), sd = half the 95 % interval ÷ 1.96"


def sd(measure: Measure) -> float | None:
    """The standard deviation implied by a measure's 95 % interval (None when it has no two ends)."""
    if measure.raw is None or measure.raw_low is None or measure.raw_high is None:
        return None
    return (float(measure.raw_high) - float(measure.raw_low)) / 2 / Z95


@dataclass(frozen=True)
class Change:
    """``before`` -> ``after`` of one measure; ``beyond_noise`` None when it cannot be judged."""

    before: Measure
    after: Measure

    @property
    def comparable(self) -> bool:
        return self.before.raw is not None and self.after.raw is not None

    @property
    def diff(self) -> float:
        """after - before in the measure's own scale (fractions for rates)."""
        assert self.before.raw is not None and self.after.raw is not None
        return float(self.after.raw) - float(self.before.raw)

    @property
    def relative(self) -> float | None:
        """The change as a fraction of ``before`` (None when before is 0 or missing)."""
        if not self.comparable or not self.before.raw:
            return None
        return self.diff / abs(float(self.before.raw))

    @property
    def beyond_noise(self) -> bool | None:
        if not self.comparable:
            return None
        a, b = sd(self.before), sd(self.after)
        if a is None or b is None:
            return None
        return abs(self.diff) > Z95 * math.sqrt(a * a + b * b)

    @property
    def text(self) -> str:
        """'+5.2%' for counts and sales, '+1.3 pts' for rates; '' when not comparable."""
        if not self.comparable:
            return ""
        if self.before.unit == "percent":
            return _signed(self.diff * 100) + " pts"
        rel = self.relative
        return _signed(rel * 100) + "%" if rel is not None else _signed(self.diff, 0)


def _signed(x: float, digits: int = 1) -> str:
    """'+5.2', '-0.3', and '±0.0' for a change that rounds to nothing (never '-0.0')."""
    text = f"{x:+.{digits}f}"
    return "±" + text[1:] if float(text) == 0 else text


__all__ = ["RULE_SHORT", "RULE_TEXT", "Z95", "Change", "sd"]
