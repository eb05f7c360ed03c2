"""Recent-weighted burn rate from per-minute buckets, with the noise of its estimate.

The model. Usage arrives in bursts (API responses of very different sizes, turns separated by
thinking and idle spells); per minute that is a non-negative series ``x_m``. Over a stretch where
the underlying rate is steady, ``x_m`` has a mean ``mu`` (the burn rate) and a *long-run* variance
``s2`` (the variance of a k-minute sum divided by k: what decides how far a sum over many minutes
strays from ``k * mu``). Both are estimated from the buckets:

- ``mu`` is an exponentially weighted mean over whole minutes, idle minutes included (they are
  zero), with weight ``2 ** (-age / h)`` for a half-life ``h``. A short memory follows changes of
  rate; a long one has less noise. The half-life is not fixed: of the candidates
  :data:`HALF_LIVES` (and "since the series began") we take the *longest* whose estimate agrees
  with every shorter one within :data:`AGREE` standard errors of the shorter one — Lepski's
  method for choosing a smoothing window (Lepski 1990; Lepski, Mammen & Spokoiny 1997). Steady
  use thus gets the low noise of a long average, and a change of rate falls back to the recent one.
- ``s2`` comes from successive differences of :data:`BINS`-minute means (the Allan variance;
  binned so that a burst spread over a few minutes counts as one, as it does in the sums that
  matter; differences, so that a change of rate is not taken for noise), weighted like ``mu``.
  The wider bins win when they see clearly more (bursts correlated beyond 5 minutes). Without any
  bin it is :data:`PRIOR_DISPERSION`.
- The rate is not constant: people start and stop, orchestrators add instances. ``drift`` is the
  variance per minute of the log of the rate, as in a random walk plus noise (the local-level
  model): what the differences of :data:`DRIFT_BIN`-minute means show beyond their noise.

``dispersion`` is ``s2 / mu**2``: the squared coefficient of variation of one minute's usage in the
long run. The relative standard error of ``mu`` is ``sqrt(dispersion / n_eff)``, with ``n_eff`` the
effective number of minutes behind the estimate ``(sum w)**2 / sum w**2``. See ``_exhaust`` for
how that becomes a P10–P90 band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

#: Candidate half-lives in minutes, shortest first; the longest candidate is "since the series began".
HALF_LIVES: tuple[float, ...] = (10.0, 30.0, 90.0, 270.0, math.inf)
#: A longer memory is kept while its rate is within this many standard errors of every shorter one's.
AGREE = 2.0
#: Minutes per bin for the dispersion: a burst of a few minutes is one event, not several; the
#: larger of the two estimates is taken (see :func:`_estimate`).
BINS: tuple[int, ...] = (5, 15)
#: ... a wider bin's estimate is taken when it exceeds the narrower one by this many of its standard errors.
WIDER = 1.28
#: Minutes per bin for the rate's own drift (see :func:`_drift`); 0 turns the drift off.
DRIFT_BIN = 20
#: The dispersion assumed before there is data (per-minute squared CV; 0.1 is several sessions
#: in parallel, 5 one bursty interactive session), and how many bins of evidence it is worth
#: (next to nothing: the benchmark showed any real weight widening steady use's band too much).
PRIOR_DISPERSION = 0.3
PRIOR_BINS = 0.01
#: Below this much history, or this few minutes with any usage, there is no forecast ("insufficient data").
MIN_MINUTES = 10
MIN_ACTIVE = 3
#: Buckets older than this are not read (the ledger keeps minute buckets for at least 24 h).
MAX_MEMORY = 24 * 60


class Rate(NamedTuple):
    """A burn rate in units (tokens or micro-dollars) per minute, and how much to trust it."""

    per_min: float = 0.0
    half_life: float = math.inf  #: the memory chosen, minutes (inf: the plain mean since the series began)
    n_eff: float = 0.0  #: effective minutes of history behind ``per_min``
    dispersion: float = PRIOR_DISPERSION  #: long-run variance of a minute's usage over ``per_min**2``
    minutes: int = 0  #: minutes of history read (from the first bucket with usage to now)
    active: int = 0  #: of those, minutes with any usage
    df: float = PRIOR_BINS  #: degrees of freedom behind ``dispersion`` (bins of evidence, the prior's included)
    drift: float = 0.0  #: variance per minute of the log of the rate itself (it wanders: see _exhaust)

    @property
    def enough(self) -> bool:
        """Whether there is enough history for a forecast (else say "insufficient data")."""
        return self.minutes >= MIN_MINUTES and self.active >= MIN_ACTIVE and self.per_min > 0

    @property
    def rel_error(self) -> float:
        """Relative standard error of ``per_min`` (inf without data)."""
        if self.n_eff <= 0 or self.per_min <= 0:
            return math.inf
        return math.sqrt(self.dispersion / self.n_eff)


def burn_rate(
    series: Sequence[tuple[int, int]], now: int, /, *, half_life: float | None = None, drift: bool = True
) -> Rate:
    """The recent-weighted rate of ``series`` at epoch minute ``now`` (that minute included).

    :param series: sparse ``(epoch minute, value)`` pairs; minutes not listed had no usage, minutes
        after ``now`` are ignored, repeated minutes add up.
    :param half_life: force one memory (minutes; ``math.inf`` for the plain mean) instead of choosing.
    :param drift: False: leave ``drift`` at 0 — only a time to exhaustion needs it (see
        :func:`with_drift`), and a status shows the rates of many scopes that cannot run out.
    """
    ages = _ages(series, now)
    if ages is None:
        return Rate()
    by_age, span = ages
    bins = [_binned(ages, width) for width in sorted(BINS)]  # what every half-life's dispersion reads
    candidates: list[tuple[float, float, float, float, float, float]] = []
    chosen = None
    for h in (half_life,) if half_life is not None else HALF_LIVES:
        candidate = _estimate(ages, bins, h)
        if chosen is not None and any(
            abs(candidate[0] - short[0]) > AGREE * math.sqrt(short[1]) for short in candidates
        ):
            break  # the longer memories disagree with a shorter one too (computed only when needed)
        candidates.append(candidate)
        chosen = candidate
    assert chosen is not None
    mu, _, h, n_eff, dispersion, df = chosen
    return Rate(mu, h, n_eff, dispersion, span, len(by_age), df, _drift(ages, dispersion) if drift else 0.0)


def with_drift(series: Sequence[tuple[int, int]], now: int, rate: Rate, /) -> Rate:
    """``rate``, made by ``burn_rate(series, now, drift=False)``, with its drift: what ``burn_rate``
    would have returned with it."""
    ages = _ages(series, now)
    return rate if ages is None else rate._replace(drift=_drift(ages, rate.dispersion))


def _ages(series: Sequence[tuple[int, int]], now: int, /) -> _Ages | None:
    by_age: dict[int, int] = {}  # usage by age in minutes (0: the minute ``now``), only where some
    for minute, value in series:
        if now - MAX_MEMORY < minute <= now and value > 0:
            by_age[now - minute] = by_age.get(now - minute, 0) + value
    return _Ages(by_age, max(by_age) + 1) if by_age else None


class _Ages(NamedTuple):
    """Usage by age in minutes over ``span`` minutes, kept sparse: most minutes have none, and the
    estimates below cost what the minutes with usage cost, not the whole day."""

    used: dict[int, int]  # age -> usage, only ages with some
    span: int


def _drift(ages: _Ages, dispersion: float) -> float:
    """How fast the rate itself wanders: variance per minute of its log (a random walk).

    Random walk plus noise (the local-level model): the difference of two successive
    :data:`DRIFT_BIN`-minute means has the variance of their noise (``2 * s2 / width``) plus the
    rate's own change over ``width`` minutes (``mu**2 * drift * width``). What the noise does not
    explain is drift; none when it explains all.
    """
    if DRIFT_BIN <= 0:
        return 0.0
    bins = _bins(ages, DRIFT_BIN)
    if len(bins) < 3:
        return 0.0
    mu = sum(bins) / len(bins)
    if mu <= 0:
        return 0.0
    diffs = [(bins[j] - bins[j + 1]) ** 2 for j in range(len(bins) - 1)]
    excess = sum(diffs) / len(diffs) - 2 * dispersion * mu * mu / DRIFT_BIN
    return max(0.0, excess / (mu * mu * DRIFT_BIN))


def _bins(ages: _Ages, width: int) -> list[float]:
    """Per-minute means of whole ``width``-minute bins, newest first (an incomplete oldest bin is dropped)."""
    sums = [0] * (ages.span // width)
    for age, value in ages.used.items():
        j = age // width
        if j < len(sums):
            sums[j] += value
    return [total / width for total in sums]


def _weights(n: int, step: float, h: float) -> tuple[float, float]:
    """Sum of weights and of squared weights of ``n`` points ``step`` minutes apart, newest weight 1."""
    if math.isinf(h):
        return float(n), float(n)
    q = 2.0 ** (-step / h)
    return (1 - q**n) / (1 - q), (1 - q ** (2 * n)) / (1 - q * q)


class _Binned(NamedTuple):
    """What the dispersion needs of the ``width``-minute bins (see :func:`_dispersion`), the same
    for every half-life: so it is worked out once per series, not once per half-life tried."""

    width: int
    pairs: int  #: successive differences of whole bins (bins - 1)
    #: ``(j + 1, (b_j - b_(j+1))**2)`` of the pairs next to a bin with usage (the others are 0), in
    #: the order the weighted sum takes them
    terms: list[tuple[int, float]]


def _binned(ages: _Ages, width: int) -> _Binned:
    count = ages.span // width
    sums: dict[int, int] = {}  # bin -> usage, only bins with some (most of a day's have none)
    for age, value in ages.used.items():
        j = age // width
        if j < count:
            sums[j] = sums.get(j, 0) + value
    pairs = count - 1

    def mean(j: int) -> float:
        return sums.get(j, 0) / width

    # pair j weighs r**(j+1) (see _dispersion); the set is made as a dense list of bins would make
    # it (bins with usage in order, each adding the pair before and the pair after it), so the sum
    # takes its terms in the same order, to the last bit
    near = {k for j in sorted(sums) for k in (j - 1, j) if 0 <= k < pairs}
    return _Binned(width, pairs, [(j + 1, (mean(j) - mean(j + 1)) ** 2) for j in near])


def _dispersion(binned: _Binned, mu: float, h: float) -> tuple[float, float]:
    """(measured dispersion, its degrees of freedom) from bin means weighted like the rate; (0, 0) without.

    From successive differences of the bins (the Allan variance): ``E[(b_j - b_(j+1))**2] / 2`` is
    a bin mean's variance, and a change of level or a trend leaves it alone (it would inflate the
    plain variance around the mean, and with it the tolerance that lets a stale long memory win).
    """
    pairs, width = binned.pairs, binned.width
    if mu <= 0 or pairs < 1:
        return 0.0, 0.0
    # pair j weighs r**(j+1): geometric sums in closed form, and only the pairs next to a bin with
    # usage differ from 0 (most of a day's bins have none)
    r = 1.0 if math.isinf(h) else 2.0 ** (-width / h)
    if r == 1.0:
        total = total2 = float(pairs)
    else:
        total = r * (1 - r**pairs) / (1 - r)
        total2 = r * r * (1 - r ** (2 * pairs)) / (1 - r * r)
    var_bin = sum(r**e * d for e, d in binned.terms) / (2 * total)
    # Successive differences overlap, so they carry about 2/3 of a degree of freedom each.
    return var_bin * width / (mu * mu), (total * total / total2) * 2 / 3


def _estimate(ages: _Ages, bins: list[_Binned], h: float) -> tuple[float, float, float, float, float, float]:
    """(mean per minute, its variance, half-life, n_eff, dispersion, its degrees of freedom) for one half-life."""
    sw, sw2 = _weights(ages.span, 1.0, h)
    if math.isinf(h):
        mu = sum(ages.used.values()) / sw
    else:
        q = 2.0 ** (-1 / h)
        mu = sum(v * q**age for age, v in ages.used.items()) / sw  # weight q**age: 1 for this minute
    n_eff = sw * sw / sw2
    # The long-run variance is what a sum over many minutes feels: bursts correlated over longer
    # than one bin width show only in wider bins. A wider view replaces the narrower one when it
    # sees clearly more (beyond the chi-square noise of its own few bins), not by chance.
    measured, df = 0.0, 0.0
    for k, binned in enumerate(bins):  # narrowest first
        d, f = _dispersion(binned, mu, h)
        if k == 0 or (f > 0 and d > measured * (1 + WIDER * math.sqrt(2 / f))):
            measured, df = d, f
    # Shrunk toward the prior by the evidence: with few bins the prior weighs as much as PRIOR_BINS of them.
    dispersion = (df * measured + PRIOR_BINS * PRIOR_DISPERSION) / (df + PRIOR_BINS)
    df += PRIOR_BINS
    var_mu = dispersion * mu * mu / n_eff if n_eff > 0 else math.inf
    return mu, var_mu, h, n_eff, dispersion, df
