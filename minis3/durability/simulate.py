"""A Monte Carlo simulation of ``model.py``'s chain, to check its closed form.

Pure (numpy, seeded; no I/O). It follows many stripes at once, each a row of n flags
(fragment lost or not) with their AZs, event by event, until each is lost:

- a disk failure: one of the fragments still there, chosen uniformly, is lost;
- a repair (one at a time at μ, or i·μ with ``repair="parallel"``): one lost fragment, chosen
  uniformly, is back; from state m it first reads k fragments and may meet a latent sector
  error (probability p), which loses the stripe;
- an AZ outage (α a year for each AZ): the AZ's fragments are gone for D hours, each of the
  others fails during it with probability q; the stripe is lost if fewer than k are left,
  else it goes on as before.

It never uses the closed form's algebra (the hypergeometric and binomial sums, the linear
system): it draws which fragments are where. So the mean of the times to loss, with its
confidence interval, checks ``model.evaluate``'s MTTDL, and the counts of each way of loss
check its shares. With real rates a loss takes ~10¹⁰ events (that is why the closed form
exists): tests exaggerate the rates so that losses come within a few dozen events.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import AZ_ALONE, AZ_DISKS, DISK, LSE, MODES, Inputs, Scheme


class TooLong(RuntimeError):
    """Some stripes were still alive after ``max_events`` events: exaggerate the rates more."""


@dataclass(frozen=True)
class Simulation:
    trajectories: int
    events: int                    # the most events any stripe lived through
    mttdl_years: float             # mean time to loss
    stderr_years: float
    z: float                       # the interval is mean ± z·stderr
    counts: dict[str, int]         # losses by way of loss

    @property
    def interval(self) -> tuple[float, float]:
        return self.mttdl_years - self.z * self.stderr_years, self.mttdl_years + self.z * self.stderr_years

    def share(self, mode: str) -> float:
        return self.counts[mode] / self.trajectories

    def share_interval(self, mode: str) -> tuple[float, float]:
        """The normal interval of a binomial proportion, widened by half a count either side."""
        p, n = self.share(mode), self.trajectories
        half = self.z * math.sqrt(p * (1 - p) / n) + 0.5 / n
        return max(0.0, p - half), min(1.0, p + half)

    def contains(self, mttdl_years: float) -> bool:
        lo, hi = self.interval
        return lo <= mttdl_years <= hi


def simulate(scheme: Scheme, inputs: Inputs, trajectories: int = 20_000, seed: int = 1,
             max_events: int = 100_000, z: float = 2.576) -> Simulation:
    """Follow ``trajectories`` stripes from full to lost; z = 2.576 is a 99 % interval."""
    rng = np.random.default_rng(seed)
    n, k, m = scheme.n, scheme.k, scheme.m
    placement = np.array(scheme.placement)
    azs = len(placement)
    az_of = np.repeat(np.arange(azs), placement)            # position → its AZ
    lam, mu, alpha = inputs.lam, inputs.mu, inputs.az_outages_per_year
    p_lse, q = inputs.p_lse, inputs.q_outage
    codes = {mode: c for c, mode in enumerate(MODES)}

    lost = np.zeros((trajectories, n), dtype=bool)
    t = np.zeros(trajectories)
    ids = np.arange(trajectories)
    died_at = np.empty(trajectories)
    cause = np.empty(trajectories, dtype=np.int8)
    events = 0
    while ids.size:
        if events >= max_events:
            raise TooLong(f"{ids.size} of {trajectories} stripes still alive after {max_events} events")
        events += 1
        size = ids.size
        nl = lost.sum(axis=1)
        fail = (n - nl) * lam
        rep = np.where(nl > 0, mu * (nl if inputs.repair == "parallel" else 1), 0.0)
        total = fail + rep + azs * alpha
        t += rng.exponential(size=size) / total
        u = rng.random(size) * total
        is_fail = u < fail
        is_rep = ~is_fail & (u < fail + rep)
        is_az = ~is_fail & ~is_rep
        dead = np.full(size, -1, dtype=np.int8)
        keys = rng.random((size, n))
        # A disk failure: the fragment with the largest random key among those still there.
        rows = np.flatnonzero(is_fail)
        lost[rows, np.argmax(np.where(lost[rows], -1.0, keys[rows]), axis=1)] = True
        dead[is_fail & (nl + 1 > m)] = codes[DISK]
        # A repair: from m it reads exactly k fragments, and may meet an unreadable sector.
        hit = is_rep & (nl == m) & (rng.random(size) < p_lse)
        dead[hit] = codes[LSE]
        rows = np.flatnonzero(is_rep & ~hit)
        lost[rows, np.argmax(np.where(lost[rows], keys[rows], -1.0), axis=1)] = False
        # An AZ outage: its fragments away, the others each failing with probability q meanwhile.
        rows = np.flatnonzero(is_az)
        if rows.size:
            zs = rng.integers(azs, size=rows.size)
            left = ~lost[rows] & (az_of[None, :] != zs[:, None])
            left &= rng.random((rows.size, n)) >= q
            gone = (left.sum(axis=1) < k) & (placement[zs] > 0)
            dead[rows[gone]] = np.where(placement[zs[gone]] > m, codes[AZ_ALONE], codes[AZ_DISKS])
        done = dead >= 0
        died_at[ids[done]] = t[done]
        cause[ids[done]] = dead[done]
        keep = ~done
        ids, lost, t = ids[keep], lost[keep], t[keep]
    mean = float(died_at.mean())
    stderr = float(died_at.std(ddof=1) / math.sqrt(trajectories))
    counts = {mode: int((cause == c).sum()) for mode, c in codes.items()}
    return Simulation(trajectories, events, mean, stderr, z, counts)
