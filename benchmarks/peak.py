"""The highest Server target a system holds, from VALID/INVALID probes on a grid of targets.

Near the peak LoadGen's verdict is noisy: one probe in a few is VALID by luck well above what holds, and one
INVALID by bad luck below it. So the verdicts are fitted by a monotone (isotonic, non-increasing) regression of the
VALID share on the target, weighted by the probes at each target (scikit-learn's ``IsotonicRegression``); the peak
is the highest target whose fitted share is at least :data:`HOLDS` (VALID more often than not). An isolated lucky
target above a run of INVALID ones is pooled with them and does not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.isotonic import IsotonicRegression

HOLDS = 0.5


def sustained_peak(targets: Sequence[float], verdicts: Sequence[Sequence[str]]) -> float | None:
    """Highest target (same unit as ``targets``, e.g. queries/s) whose fitted VALID share is >= HOLDS.

    ``verdicts[i]``: the LoadGen verdicts ("VALID"/"INVALID") of the probes at ``targets[i]``. Returns None when
    no target holds. Raises ValueError when the two sequences differ in length or a target has no probe."""
    if len(targets) != len(verdicts):
        raise ValueError(f"{len(targets)} targets but {len(verdicts)} verdict lists")
    if not targets:
        return None
    if any(not v for v in verdicts):
        raise ValueError("every target needs at least one probe")
    shares = [sum(x == "VALID" for x in v) / len(v) for v in verdicts]
    fit = IsotonicRegression(increasing=False).fit(list(targets), shares, sample_weight=[len(v) for v in verdicts])
    fitted = fit.predict(list(targets))
    held = [t for t, f in zip(targets, fitted) if f >= HOLDS]
    return max(held) if held else None
