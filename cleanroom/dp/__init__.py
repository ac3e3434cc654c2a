"""Differential privacy: sensitivity from enforced bounds, OpenDP noise, intervals, suppression.

Data flows in one way only: the engine's exact aggregates go in, a ``NoisyResult`` comes out of
:func:`release`. Nothing here sees rows, and no randomness other than OpenDP's is used.
"""

from __future__ import annotations

from cleanroom.dp.accuracy import Interval, accuracy, ci95, count_interval, noise_variance, share_interval
from cleanroom.dp.noise import Mechanism, zcdp_rho
from cleanroom.dp.release import fraction_text, release, split_epsilon
from cleanroom.dp.sensitivity import l1_sensitivity, l2_sensitivity, l2_sensitivity_squared

__all__ = [
    "Interval",
    "Mechanism",
    "accuracy",
    "ci95",
    "count_interval",
    "fraction_text",
    "l1_sensitivity",
    "l2_sensitivity",
    "l2_sensitivity_squared",
    "noise_variance",
    "share_interval",
    "release",
    "split_epsilon",
    "zcdp_rho",
]
