"""How likely is an object to be lost in a year? The Markov model of one stripe, solved exactly.

Pure: no aiohttp, no files, no numpy. ``minis3 durability`` (``durability/cli.py``) feeds it
the cluster's measured repair time; ``durability/simulate.py`` checks it by Monte Carlo.

**The stripe.** An erasure scheme (k, m) stores n = k + m fragments on n different nodes
(disks), any k of which rebuild the data; replication with c copies is the case k = 1,
m = c - 1. In minis3 an object's fragments (every segment's) live on the same n nodes, so
one object is one stripe; a multipart object is one stripe per part.

**The chain** (states = fragments lost, i = 0 .. m; m + 1 is data loss, absorbing)::

             nλ        (n-1)λ               (n-m+1)λ        (n-m)λ
        0 ───────▶ 1 ────────▶ 2  ···  m-1 ─────────▶ m ─────────▶ LOST
          ◀─────── ◀────────       ···      ◀─────────   ─ ─ ─ ─ ─▶ (a rebuild from m meets a
              μ         μ                      μ(1-p)        μp        latent sector error)
        and from every state i, an AZ outage: rate α·Σ_z ℓ(i, z) ─────▶ LOST

- **failure**: each of the n - i fragments still there is lost when its disk fails, at
  λ a year each, so i → i+1 at (n - i)·λ; λ = -ln(1 - AFR), the rate whose one-year
  failure probability is the annual failure rate;
- **repair**: one fragment at a time, at μ = 1/MTTR whatever the number lost ("serial",
  the default), as in the single-repair-facility chains of the RAID literature (Gibson's
  thesis, 1992; Chen, Lee, Gibson, Katz & Patterson, "RAID: High-Performance, Reliable
  Secondary Storage", 1994, whose MTTDL = MTTF²/(N(G-1)·MTTR) is this chain's first-order
  term) and in Ford et al., "Availability in Globally Distributed Storage Systems" (OSDI
  2010: a stripe's chain over its available chunks, chunk failures at (chunks)·λ, one
  recovery rate ρ out of each degraded state).
  ``repair="parallel"`` uses i·μ instead (every lost fragment rebuilt at once, each at μ);
  it is more optimistic from m ≥ 2 on. (minis3's scrubber rebuilds every lost fragment of a
  stripe in the same pass, so on a small cluster the truth is closer to "parallel"; the
  serial chain is the conservative, conventional choice.)
- **latent sector errors** (LSE): in state m the stripe has exactly k fragments, and a
  rebuild must read all k (k × the fragment size = the object's size); one unreadable
  sector among them and that segment cannot be decoded: minis3's node quarantines the whole
  fragment file, so the repair from m fails. p = 1 - exp(-LSE per TB × object bytes / 10¹²);
  below m another fragment stands in, so an LSE costs nothing there;
- **AZ outages**: each AZ has outages at α a year, each lasting D hours, taking the AZ's
  fragments away at once for that time. ℓ(i, z) is the probability that an outage of AZ z
  loses the stripe in state i: with i lost fragments spread uniformly over the n positions
  (j of them among AZ z's p_z: hypergeometric), r = n - p_z - (i - j) fragments remain; if
  r < k the stripe is lost at once, else it is lost if more than r - k of the r fail during
  the D hours (binomial, q = 1 - exp(-λD)), with no repair meanwhile (the conservative
  choice: with no fragment to spare none can start). The chain does not know whether the
  fragments come back: a fire does not give them back, a power cut does. So the AZ term is
  the durability lost to *destructive* AZ events when α is their rate (the default), and the
  chance of an object being *unreadable* for a while when α is the rate of all outages.

**The numbers.** Q is the generator restricted to the transient states 0 .. m; the expected
time spent in each state before absorption, starting full, is τ = e₀ᵀ(-Q)⁻¹, and the mean
time to data loss is MTTDL = Σᵢ τᵢ, solved here exactly in rational arithmetic
(:class:`fractions.Fraction`, Gauss–Jordan). The chance that the loss comes through a given
channel (a disk failure in state m, an LSE, an AZ outage) is Σᵢ τᵢ × that channel's rate out
of i: these shares add up to 1 and say which failure mode dominates. Losses are rare events
after a long wait (MTTDL ≫ MTTR), so the time to loss is very nearly exponential and
P(a given object is lost within a year) = 1 - exp(-1 year / MTTDL); expected objects lost
a year among N = N·P (an expectation, whatever the correlation between objects); the
"nines" are -log10 P (S3's 99.999999999 % is P = 10⁻¹¹, 11 nines).

**Two cases by hand**, checked in tests/unit/test_durability_model.py:

- k = 1, m = 0 (one copy): one transient state, left at λ: MTTDL = 1/λ.
- k = 1, m = 1 (two copies, serial repair): let Tᵢ be the expected time to loss from state i.
  T₀ = 1/(2λ) + T₁ (state 0 lasts 1/(2λ) on average, then goes to 1);
  T₁ = 1/(λ+μ) + μ/(λ+μ)·T₀ (state 1 lasts 1/(λ+μ), then back to 0 with probability μ/(λ+μ)).
  Substituting: T₀·λ/(λ+μ) = 1/(2λ) + 1/(λ+μ) = (3λ+μ)/(2λ(λ+μ)), so
  **MTTDL = T₀ = (3λ + μ)/(2λ²)** (≈ μ/(2λ²) when μ ≫ λ).
- In general, when μ ≫ λ and serial repair: MTTDL ≈ μ^m / (n(n-1)···(n-m)·λ^(m+1)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

HOURS_PER_YEAR = 365.25 * 24
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600

#: The ways a stripe is lost, in the order reports list them.
DISK = "disk failures"
LSE = "latent sector error during a rebuild"
AZ_ALONE = "AZ outage"
AZ_DISKS = "AZ outage + disk failures"
MODES = (DISK, LSE, AZ_ALONE, AZ_DISKS)

#: S3's published design target: 99.999999999 % a year for an object.
S3_CLAIM_NINES = 11.0


def spread(n: int, azs: int) -> tuple[int, ...]:
    """n fragments dealt round-robin over ``azs`` AZs (minis3's placement: 6 over 3 → 2,2,2)."""
    return tuple(n // azs + (1 if z < n % azs else 0) for z in range(azs))


@dataclass(frozen=True)
class Scheme:
    """k data + m parity fragments (k = 1: m + 1 copies), ``placement[z]`` of them in AZ z."""
    k: int
    m: int
    placement: tuple[int, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if self.k < 1 or self.m < 0:
            raise ValueError(f"a scheme needs k ≥ 1 and m ≥ 0, not {self.k}+{self.m}")
        if sum(self.placement) != self.n or any(p < 0 for p in self.placement):
            raise ValueError(f"placement {','.join(map(str, self.placement))} does not hold the "
                             f"{self.n} fragments of {self.k}+{self.m}")

    @property
    def n(self) -> int:
        return self.k + self.m

    @property
    def overhead(self) -> float:
        """Bytes stored per byte of data."""
        return self.n / self.k

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.m + 1} copies" if self.k == 1 else f"{self.k}+{self.m}"

    @classmethod
    def erasure(cls, k: int, m: int, azs: int = 3, placement: tuple[int, ...] | None = None,
                name: str = "") -> "Scheme":
        return cls(k, m, tuple(placement) if placement is not None else spread(k + m, azs), name)

    @classmethod
    def replication(cls, copies: int, azs: int = 3, placement: tuple[int, ...] | None = None,
                    name: str = "") -> "Scheme":
        """Replication is the erasure scheme k = 1, m = copies - 1."""
        return cls.erasure(1, copies - 1, azs, placement, name)

    @classmethod
    def parse(cls, text: str, azs: int = 3, placement: tuple[int, ...] | None = None) -> "Scheme":
        """``4+2`` (erasure) or ``3x`` (copies)."""
        t = text.strip().lower()
        try:
            if t.endswith("x"):
                return cls.replication(int(t[:-1]), azs, placement)
            k, _, m = t.partition("+")
            return cls.erasure(int(k), int(m), azs, placement)
        except ValueError as exc:
            raise ValueError(f"a scheme is K+M (4+2) or Nx (3x): {text!r} ({exc})") from None


@dataclass(frozen=True)
class Inputs:
    """Failure and repair rates. Defaults are round, stated figures (docs/course/02)."""
    afr: float = 0.02                      # annual failure rate of a disk (node)
    mttr_hours: float = 24.0               # detection + rebuild of a lost fragment
    az_outages_per_year: float = 0.001     # per AZ: events that take its fragments away
    az_outage_hours: float = 24.0          # how long they stay away (or until rebuilt elsewhere)
    lse_per_tb: float = 0.08               # unreadable sectors per TB read (10⁻¹⁴ per bit)
    object_bytes: float = float(1 << 20)   # the object's size: a rebuild from m reads that much
    repair: str = "serial"                 # "serial" (μ from every state) or "parallel" (i·μ)

    def __post_init__(self) -> None:
        if not 0 < self.afr < 1:
            raise ValueError(f"the annual failure rate is a probability in (0, 1), not {self.afr}")
        if self.mttr_hours <= 0:
            raise ValueError("the repair time must be positive")
        if min(self.az_outages_per_year, self.az_outage_hours, self.lse_per_tb, self.object_bytes) < 0:
            raise ValueError("rates, durations and sizes cannot be negative")
        if self.repair not in ("serial", "parallel"):
            raise ValueError(f"repair is serial or parallel, not {self.repair!r}")

    @property
    def lam(self) -> float:
        """λ, failures a year of one disk."""
        return -math.log1p(-self.afr)

    @property
    def mu(self) -> float:
        """μ = 1/MTTR, repairs a year."""
        return HOURS_PER_YEAR / self.mttr_hours

    @property
    def p_lse(self) -> float:
        """Chance that reading k fragments (the object's bytes) meets an unreadable sector."""
        return -math.expm1(-self.lse_per_tb * self.object_bytes / 1e12)

    @property
    def q_outage(self) -> float:
        """Chance that one disk fails during one AZ outage."""
        return -math.expm1(-self.lam * self.az_outage_hours / HOURS_PER_YEAR)

    def with_(self, **changes) -> "Inputs":
        return replace(self, **changes)


@dataclass(frozen=True)
class Chain:
    """The chain's rates a year, exact (Fractions), for transient states 0 .. m."""
    n: int
    k: int
    m: int
    fail: tuple[Fraction, ...]        # i → i+1 (at i = m: → lost, a disk failure)
    repair: tuple[Fraction, ...]      # i → i-1 (at i = m: the part that succeeds)
    lse: tuple[Fraction, ...]         # → lost: a repair from m meets an LSE (0 elsewhere)
    az_alone: tuple[Fraction, ...]    # → lost: an outage of an AZ holding more than m fragments
    az_disks: tuple[Fraction, ...]    # → lost: an outage, with disks failed before or during it

    def out(self, i: int) -> Fraction:
        return self.fail[i] + self.repair[i] + self.lse[i] + self.az_alone[i] + self.az_disks[i]


def _binom_tail(r: int, q: Fraction, more_than: int) -> Fraction:
    """P(Binomial(r, q) > more_than)."""
    return sum((math.comb(r, f) * q ** f * (1 - q) ** (r - f) for f in range(more_than + 1, r + 1)), Fraction(0))


def outage_loss(scheme: Scheme, i: int, z: int, q: Fraction) -> Fraction:
    """ℓ(i, z): the chance that an outage of AZ z loses a stripe missing i fragments
    (spread uniformly over the n positions), each remaining disk failing during the outage
    with probability q."""
    n, k, p = scheme.n, scheme.k, scheme.placement[z]
    if p == 0:
        return Fraction(0)                 # nothing of the stripe there: the outage changes nothing
    total = Fraction(0)
    for j in range(max(0, i - (n - p)), min(i, p) + 1):         # j of the i lost are in AZ z
        h = Fraction(math.comb(p, j) * math.comb(n - p, i - j), math.comb(n, i))
        r = n - p - (i - j)                # fragments left outside AZ z
        total += h * (1 if r < k else _binom_tail(r, q, r - k))
    return total


def chain(scheme: Scheme, inputs: Inputs) -> Chain:
    n, k, m = scheme.n, scheme.k, scheme.m
    lam, mu = Fraction(inputs.lam), Fraction(inputs.mu)
    p, q, alpha = Fraction(inputs.p_lse), Fraction(inputs.q_outage), Fraction(inputs.az_outages_per_year)
    fail, rep, lse, alone, disks = [], [], [], [], []
    for i in range(m + 1):
        fail.append((n - i) * lam)
        mu_i = 0 if i == 0 else (mu if inputs.repair == "serial" else i * mu)
        rep.append(mu_i * (1 - p) if i == m else Fraction(mu_i))
        lse.append(mu_i * p if i == m else Fraction(0))
        a = b = Fraction(0)
        for z, pz in enumerate(scheme.placement):
            loss = alpha * outage_loss(scheme, i, z, q)
            if pz > m:
                a += loss                  # lost with no disk failing at all
            else:
                b += loss
        alone.append(a)
        disks.append(b)
    return Chain(n, k, m, tuple(fail), tuple(rep), tuple(lse), tuple(alone), tuple(disks))


def _solve(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    """x with a·x = b, exactly (Gauss–Jordan with a nonzero pivot; a is small)."""
    size = len(b)
    rows = [list(r) + [v] for r, v in zip(a, b)]
    for col in range(size):
        piv = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[piv] = rows[piv], rows[col]
        head = rows[col][col]
        rows[col] = [v / head for v in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                f = rows[r][col]
                rows[r] = [v - f * w for v, w in zip(rows[r], rows[col])]
    return [rows[r][size] for r in range(size)]


def generator(c: Chain) -> list[list[Fraction]]:
    """-Q over the transient states: total rate out on the diagonal, minus each move's rate off it."""
    size = c.m + 1
    a = [[Fraction(0)] * size for _ in range(size)]
    for i in range(size):
        a[i][i] = c.out(i)
        if i < c.m:
            a[i][i + 1] = -c.fail[i]
        if i > 0:
            a[i][i - 1] = -c.repair[i]
    return a


def time_in_states(c: Chain) -> list[Fraction]:
    """τᵢ: expected years spent in state i before the loss, starting with every fragment."""
    a = generator(c)
    at = [list(col) for col in zip(*a)]                    # τ(-Q) = e₀  ⇔  (-Q)ᵀτᵀ = e₀
    return _solve(at, [Fraction(1)] + [Fraction(0)] * c.m)


def times_to_loss(c: Chain) -> list[Fraction]:
    """Tᵢ: expected years to the loss from state i ((-Q)·T = 1). T₀ is the MTTDL."""
    return _solve(generator(c), [Fraction(1)] * (c.m + 1))


def shares(c: Chain, tau: list[Fraction]) -> dict[str, Fraction]:
    """How likely the loss is to come through each channel (they add up to 1)."""
    return {DISK: tau[c.m] * c.fail[c.m],
            LSE: tau[c.m] * c.lse[c.m],
            AZ_ALONE: sum((t * r for t, r in zip(tau, c.az_alone)), Fraction(0)),
            AZ_DISKS: sum((t * r for t, r in zip(tau, c.az_disks)), Fraction(0))}


@dataclass(frozen=True)
class Result:
    scheme: Scheme
    inputs: Inputs
    mttdl_years: float
    p_year: float                  # P(a given object is lost within a year)
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def nines(self) -> float:
        return math.inf if self.p_year <= 0 else -math.log10(self.p_year)

    @property
    def dominant(self) -> str:
        return max(self.shares, key=lambda k: self.shares[k])

    def lost_per_year(self, objects: float) -> float:
        """Expected objects lost a year among ``objects`` (linearity: whatever their correlation)."""
        return objects * self.p_year

    def loss_rate(self, mode: str) -> float:
        """Losses a year of one stripe through one channel."""
        return self.shares[mode] / self.mttdl_years

    def as_dict(self, objects: float | None = None) -> dict:
        d = {"scheme": self.scheme.label, "k": self.scheme.k, "m": self.scheme.m,
             "placement": list(self.scheme.placement), "overhead": self.scheme.overhead,
             "mttdl_years": self.mttdl_years, "p_loss_per_year": self.p_year, "nines": self.nines,
             "durability_percent": durability_percent(self.p_year),
             "dominant": self.dominant, "shares": dict(self.shares)}
        if objects is not None:
            d["objects"] = objects
            d["objects_lost_per_year"] = self.lost_per_year(objects)
        return d


def evaluate(scheme: Scheme, inputs: Inputs) -> Result:
    """The closed form: MTTDL, the annual loss probability, and where losses come from."""
    c = chain(scheme, inputs)
    tau = time_in_states(c)
    mttdl = sum(tau, Fraction(0))
    p_year = -math.expm1(-1 / float(mttdl))
    return Result(scheme, inputs, float(mttdl), p_year, {k: float(v) for k, v in shares(c, tau).items()})


def mttdl_approx(scheme: Scheme, inputs: Inputs) -> float:
    """The textbook first-order MTTDL for serial repair and disk failures only (μ ≫ λ):
    μ^m / (n(n-1)···(n-m)·λ^(m+1))."""
    n, m, lam, mu = scheme.n, scheme.m, inputs.lam, inputs.mu
    return mu ** m / (math.prod(range(n - m, n + 1)) * lam ** (m + 1))


def durability_percent(p_year: float) -> str:
    """99.999999999% for P = 10⁻¹¹: the 9s the nines promise, then two more digits."""
    from decimal import Decimal, localcontext
    if p_year <= 0:
        return "100%"
    if p_year >= 1:
        return "0%"
    digits = max(2, min(40, math.floor(-math.log10(p_year)) + 2))
    with localcontext() as ctx:
        ctx.prec = 60
        text = f"{(1 - Decimal(p_year)) * 100:.{digits}f}"
    return text.rstrip("0").rstrip(".") + "%"
