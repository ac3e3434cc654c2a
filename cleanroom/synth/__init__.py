"""Synthetic partner data with a known ground truth (``cleanroom synth``).

Raw per-partner CSVs hold what partners really have, PII included and messy; ``ground_truth.json``
holds every metric of docs/explanation/metrics.md computed exactly on the identities ``prepare``
will derive. Public domains live in :mod:`cleanroom.synth.domains`.
"""

from cleanroom.synth.pipeline import GENERATOR_VERSION, GROUND_TRUTH, STEPS, Progress, SynthSummary, generate

__all__ = ["GENERATOR_VERSION", "GROUND_TRUTH", "STEPS", "Progress", "SynthSummary", "generate"]
