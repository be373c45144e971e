"""Synthetic card transactions with the schema of the Kaggle ULB credit-card file.

Columns: `Time, V1..V28, Amount, Class`, header and label quoted as in the
original (`"Class"`, `"0"`). What the generator imitates, and how:

- `Time`: integer seconds over two days, 0..172792, ascending. Arrival times
  are the order statistics of uniform draws, generated one at a time in
  increasing order (each is the minimum of the draws still to come), then
  bent through a day/night intensity profile so nights are quiet.
- `V1..V28`: zero-mean Gaussian "PCA components" whose standard deviation
  falls from about 1.96 (V1) to 0.33 (V28). V2 and V7 share a latent factor
  with `Amount`, as the real components correlate with it.
- `Amount`: log-normal, median about 22 and mean near 88, with a long tail
  capped at the original's maximum (25691.16), two decimals.
- `Class`: exactly `round(rows * fraud_rate)` frauds, placed by selection
  sampling. Ten components of a fraud move by 2 to 5.5 of their standard
  deviations times the fraud's strength, with a wider spread (the real frauds
  sit several deviations out on V14, V12, V10, V17, V4, ...). Most frauds
  are strong (0.6 to 1.4); 8% are camouflaged (strength under 0.3) and look
  like normal transactions. Plain logistic regression reaches a ROC-AUC
  around 0.97-0.98 on this, not 1.0.

Deterministic: one `random.Random(seed)` drives everything, so a seed always
gives a byte-identical file. Rows stream to disk: memory does not grow with
`rows`.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fedd.learner.atomic import DATA_FILE_MODE, atomic_text_writer
from fedd.learner.progress import Progress

__all__ = [
    "COLUMNS",
    "KAGGLE_FRAUD_RATE",
    "KAGGLE_ROWS",
    "TIME_MAX",
    "SynthSummary",
    "synth_rows",
    "write_synth",
]

KAGGLE_ROWS = 284_807
KAGGLE_FRAUD_RATE = 0.00172
TIME_MAX = 172_792  # the last Time of the original file, in seconds
AMOUNT_MAX = 25_691.16
N_COMPONENTS = 28
COLUMNS = ("Time", *(f"V{j}" for j in range(1, N_COMPONENTS + 1)), "Amount", "Class")

# Standard deviations falling geometrically from V1 to V28, as a PCA's do.
_SD = tuple(1.96 * (0.33 / 1.96) ** (j / (N_COMPONENTS - 1)) for j in range(N_COMPONENTS))
# Fraud shifts in units of each component's sd (0-based component index).
_FRAUD_SHIFT = {13: -5.5, 11: -5.0, 9: -4.25, 16: -4.0, 3: 3.75, 10: 3.25, 2: -3.0,
                15: -2.75, 6: -2.5, 1: 2.25}  # fmt: skip
_FRAUD_SPREAD = 1.6  # frauds vary more than normal rows on the shifted components
# A fraud's strength scales its shifts: uniform on [_STRONG_LOW, _STRONG_HIGH)
# for most frauds; uniform on [0, _CAMOUFLAGE_HIGH) for a share _CAMOUFLAGED of
# them, which then look like normal transactions.
_STRONG_LOW, _STRONG_HIGH = 0.6, 1.4
_CAMOUFLAGED = 0.08
_CAMOUFLAGE_HIGH = 0.3
# V2 and V7 load on the latent factor of Amount: (component, loading, own share).
_MIXING = tuple((j, a, math.sqrt(1.0 - a * a)) for j, a in ((1, -0.5), (6, 0.4)))
_AMOUNT_MU = math.log(22.0)  # median 22
_AMOUNT_SIGMA = 1.66  # mean exp(mu + sigma^2 / 2) ~ 88
_FRAUD_AMOUNT_MU = math.log(9.25)
_FRAUD_AMOUNT_SIGMA = 1.9
# Relative transaction intensity per hour of the day, midnight first.
_HOURLY = (0.35, 0.22, 0.15, 0.11, 0.10, 0.12, 0.20, 0.40, 0.65, 0.85, 0.95, 1.00,
           1.00, 1.00, 1.00, 0.98, 0.97, 0.98, 1.00, 1.00, 0.98, 0.92, 0.75, 0.55)  # fmt: skip

_HEADER = ",".join(f'"{name}"' for name in COLUMNS) + "\n"
_LINE = "%d," + "%.6f," * N_COMPONENTS + '%.2f,"%d"\n'


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """What `write_synth` wrote."""

    path: Path
    rows: int
    positives: int


def _time_quantile() -> Callable[[float], float]:
    """Map u in [0, 1) to seconds in [0, 172800) through the two-day intensity."""
    weights = _HOURLY * 2
    cumulative = [0.0]
    for weight in weights:
        cumulative.append(cumulative[-1] + weight)
    total = cumulative[-1]
    edges = [c / total for c in cumulative]

    def quantile(u: float) -> float:
        hour = min(bisect.bisect_right(edges, u) - 1, len(weights) - 1)
        within = (u - edges[hour]) / (edges[hour + 1] - edges[hour])
        return (hour + min(max(within, 0.0), 1.0)) * 3600.0

    return quantile


def synth_rows(
    rows: int, fraud_rate: float = KAGGLE_FRAUD_RATE, seed: int = 42
) -> Iterator[tuple[int, list[float], float, int]]:
    """Yield `rows` transactions `(time, [V1..V28], amount, label)` in time order.

    Raises `ValueError` if `rows` < 1 or `fraud_rate` is not in [0, 1].
    """
    if type(rows) is not int or rows < 1:
        raise ValueError("rows must be an int >= 1")
    if not 0.0 <= fraud_rate <= 1.0:
        raise ValueError("fraud_rate must be in [0, 1]")
    rng = random.Random(seed)
    gauss, uniform = rng.gauss, rng.random
    quantile = _time_quantile()
    frauds_left = round(rows * fraud_rate)
    above = 1.0  # 1 - (the last arrival's uniform draw)
    sd = _SD
    for k in range(rows):
        left = rows - k
        # The next order statistic: the minimum of `left` uniforms on the rest.
        above *= (1.0 - uniform()) ** (1.0 / left)
        time = min(int(quantile(1.0 - above)), TIME_MAX)
        is_fraud = uniform() * left < frauds_left  # selection sampling: exact count
        latent = gauss(0.0, 1.0)
        z = [gauss(0.0, 1.0) for _ in sd]
        for j, loading, own in _MIXING:
            z[j] = loading * latent + own * z[j]
        if is_fraud:
            frauds_left -= 1
            if uniform() < _CAMOUFLAGED:
                strength = _CAMOUFLAGE_HIGH * uniform()
            else:
                strength = _STRONG_LOW + (_STRONG_HIGH - _STRONG_LOW) * uniform()
            for j, shift in _FRAUD_SHIFT.items():
                z[j] = z[j] * _FRAUD_SPREAD + strength * shift
            log_amount = gauss(_FRAUD_AMOUNT_MU, _FRAUD_AMOUNT_SIGMA)
        else:
            log_amount = _AMOUNT_MU + _AMOUNT_SIGMA * (0.6 * latent + 0.8 * gauss(0.0, 1.0))
        v = [s * zj for s, zj in zip(sd, z, strict=True)]
        amount = min(math.exp(min(log_amount, 20.0)), AMOUNT_MAX)
        yield time, v, amount, int(is_fraud)


def write_synth(
    path: Path,
    rows: int,
    *,
    fraud_rate: float = KAGGLE_FRAUD_RATE,
    seed: int = 42,
    progress: Progress | None = None,
) -> SynthSummary:
    """Write `rows` synthetic transactions to `path` (atomically); return a summary.

    Raises `ValueError` for bad arguments and `DataError` if `path` cannot be
    written.
    """
    positives = 0
    with atomic_text_writer(path, newline="\n", mode=DATA_FILE_MODE) as stream:
        stream.write(_HEADER)
        lines: list[str] = []
        for i, (time, v, amount, label) in enumerate(synth_rows(rows, fraud_rate, seed), 1):
            lines.append(_LINE % (time, *v, amount, label))
            positives += label
            if len(lines) == 4096:
                stream.writelines(lines)
                lines.clear()
                if progress is not None:
                    progress(i, rows)
        stream.writelines(lines)
    if progress is not None:
        progress(rows, rows)
    return SynthSummary(path=path, rows=rows, positives=positives)
