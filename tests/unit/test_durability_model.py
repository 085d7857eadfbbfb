"""The durability model (minis3/durability/model.py): its closed form against cases worked by
hand, against the birth–death formula and the textbook approximation, against its own Monte
Carlo simulation (simulate.py), monotonic in the repair time and the failure rate, and saying
which failure mode dominates."""
import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from minis3.cli import main
from minis3.durability import model as M
from minis3.durability.cli import parse_duration, parse_rate, parse_size
from minis3.durability.simulate import TooLong, simulate

#: Disk failures only: no AZ outages, no latent sector errors.
DISKS_ONLY = dict(az_outages_per_year=0, lse_per_tb=0)


def exact_mttdl(scheme: M.Scheme, inputs: M.Inputs) -> Fraction:
    return sum(M.time_in_states(M.chain(scheme, inputs)), Fraction(0))


def test_one_copy_lives_one_over_lambda():
    """k = 1, m = 0: one state, left at λ: MTTDL = 1/λ."""
    i = M.Inputs(afr=0.02, **DISKS_ONLY)
    assert exact_mttdl(M.Scheme.replication(1), i) == 1 / Fraction(i.lam)
    assert M.evaluate(M.Scheme.replication(1), i).p_year == pytest.approx(0.02)     # 1 - exp(-λ) = AFR
    # With its AZ's outages too (each loses it: the AZ holds more than m = 0 fragments).
    j = i.with_(az_outages_per_year=0.5)
    assert exact_mttdl(M.Scheme.replication(1), j) == 1 / (Fraction(j.lam) + Fraction(0.5))


@pytest.mark.parametrize("afr,mttr_hours", [(0.02, 24), (0.5, 1000), (0.001, 0.01)])
def test_two_copies_by_hand(afr, mttr_hours):
    """k = 1, m = 1, serial repair: MTTDL = (3λ + μ)/(2λ²) (derivation in model.py's docstring);
    with one lost fragment, serial and parallel repair are the same chain."""
    i = M.Inputs(afr=afr, mttr_hours=mttr_hours, **DISKS_ONLY)
    lam, mu = Fraction(i.lam), Fraction(i.mu)
    want = (3 * lam + mu) / (2 * lam ** 2)
    assert exact_mttdl(M.Scheme.replication(2), i) == want
    assert exact_mttdl(M.Scheme.replication(2), i.with_(repair="parallel")) == want
    assert M.times_to_loss(M.chain(M.Scheme.replication(2), i))[0] == want


def birth_death_mttdl(n: int, m: int, lam: Fraction, repair) -> Fraction:
    """A birth–death chain's expected time to absorption from 0:
    Σ_j Σ_{i≤j} (1/bᵢ)·Π_{l=i+1..j} d_l/b_l, with bᵢ = (n-i)λ and d_l = repair(l)."""
    total = Fraction(0)
    for j in range(m + 1):
        for i in range(j + 1):
            term = 1 / ((n - i) * lam)
            for l in range(i + 1, j + 1):
                term *= repair(l) / ((n - l) * lam)
            total += term
    return total


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 8), m=st.integers(0, 4), afr=st.floats(0.001, 0.9),
       mttr_hours=st.floats(0.01, 5000), parallel=st.booleans())
def test_linear_system_matches_the_birth_death_formula(k, m, afr, mttr_hours, parallel):
    i = M.Inputs(afr=afr, mttr_hours=mttr_hours, repair="parallel" if parallel else "serial", **DISKS_ONLY)
    s = M.Scheme.erasure(k, m)
    mu = Fraction(i.mu)
    want = birth_death_mttdl(s.n, m, Fraction(i.lam), (lambda l: l * mu) if parallel else (lambda l: mu))
    c = M.chain(s, i)
    assert exact_mttdl(s, i) == want == M.times_to_loss(c)[0]
    assert sum(M.shares(c, M.time_in_states(c)).values()) == 1


def test_textbook_approximation_when_repair_is_fast():
    """μ ≫ λ: MTTDL ≈ μ^m / (n(n-1)···(n-m)·λ^(m+1))."""
    for s in (M.Scheme.erasure(4, 2), M.Scheme.erasure(6, 3), M.Scheme.replication(3)):
        i = M.Inputs(afr=0.02, mttr_hours=1, **DISKS_ONLY)
        assert M.evaluate(s, i).mttdl_years == pytest.approx(M.mttdl_approx(s, i), rel=1e-3)


def test_outage_loss_by_hand():
    """4+2 over 2,2,2: an outage of one AZ leaves exactly k = 4, so it loses the stripe if any
    of those 4 fail meanwhile; with one fragment already lost, it is lost at once unless that
    fragment was in the AZ that went (2 chances in 6)."""
    s, q = M.Scheme.erasure(4, 2), Fraction(1, 100)
    none_fail = (1 - q) ** 4
    assert M.outage_loss(s, 0, 0, q) == 1 - none_fail
    assert M.outage_loss(s, 1, 0, q) == Fraction(4, 6) + Fraction(2, 6) * (1 - none_fail)
    assert M.outage_loss(s, 2, 1, q) == 1 - Fraction(1, 15) * none_fail      # both lost ones in that AZ: 1 of C(6,2)
    assert M.outage_loss(M.Scheme.erasure(4, 2, placement=(6, 0, 0)), 0, 1, q) == 0   # an AZ holding nothing
    assert M.outage_loss(M.Scheme.erasure(4, 2, placement=(6, 0, 0)), 0, 0, q) == 1
    three = M.Scheme.replication(3)            # 1,1,1: two copies left, lost only if both fail
    assert M.outage_loss(three, 0, 2, q) == q ** 2


def test_replication_is_the_k1_case():
    assert M.Scheme.replication(3) == M.Scheme.erasure(1, 2) == M.Scheme.parse("3x")
    assert M.Scheme.replication(3).placement == (1, 1, 1)
    assert M.Scheme.parse("4+2").placement == (2, 2, 2) and M.Scheme.parse("6+3").placement == (3, 3, 3)
    assert M.Scheme.replication(3).overhead == 3 and M.Scheme.erasure(4, 2).overhead == 1.5
    i = M.Inputs()
    assert M.evaluate(M.Scheme.replication(3), i) == M.evaluate(M.Scheme.erasure(1, 2), i)
    with pytest.raises(ValueError):
        M.Scheme.erasure(4, 2, placement=(2, 2, 1))
    with pytest.raises(ValueError):
        M.Scheme.parse("four+two")
    with pytest.raises(ValueError):
        M.Inputs(afr=0)


# ---------------------------------------------------------------- Monte Carlo

def exaggerated(**kw) -> M.Inputs:
    """Rates at which a stripe is lost within a few dozen events."""
    base = dict(afr=0.5, mttr_hours=M.HOURS_PER_YEAR / 3, az_outages_per_year=0.3,
                az_outage_hours=0.2 * M.HOURS_PER_YEAR, lse_per_tb=3e5, object_bytes=1e6)
    return M.Inputs(**{**base, **kw})


@pytest.mark.parametrize("scheme,inputs,seed", [
    (M.Scheme.erasure(4, 2), exaggerated(**DISKS_ONLY), 1),
    (M.Scheme.erasure(4, 2), exaggerated(), 2),
    (M.Scheme.erasure(4, 2, placement=(3, 2, 1)), exaggerated(repair="parallel"), 3),
    (M.Scheme.replication(3), exaggerated(mttr_hours=M.HOURS_PER_YEAR / 4, az_outages_per_year=0.2,
                                          az_outage_hours=0.3 * M.HOURS_PER_YEAR, lse_per_tb=2e5), 4),
], ids=["4+2 disks only", "4+2 all modes", "4+2 on 3,2,1 parallel", "3 copies all modes"])
def test_monte_carlo_agrees_with_the_closed_form(scheme, inputs, seed):
    closed = M.evaluate(scheme, inputs)
    sim = simulate(scheme, inputs, trajectories=20_000, seed=seed)
    lo, hi = sim.interval
    assert lo <= closed.mttdl_years <= hi, (f"seed {seed}: closed form {closed.mttdl_years:.4f} years, "
                                            f"simulated {sim.mttdl_years:.4f} ({lo:.4f}..{hi:.4f})")
    assert hi - lo < 0.1 * closed.mttdl_years        # a tight interval, or the check means little
    for mode in M.MODES:
        lo, hi = sim.share_interval(mode)
        assert lo <= closed.shares[mode] <= hi, (seed, mode, closed.shares[mode], (lo, hi))


def test_monte_carlo_is_seeded_and_bounded():
    s, i = M.Scheme.erasure(4, 2), exaggerated()
    assert simulate(s, i, trajectories=2000, seed=7) == simulate(s, i, trajectories=2000, seed=7)
    with pytest.raises(TooLong):
        simulate(s, M.Inputs(), trajectories=100, max_events=50)        # real rates: no loss in 50 events


# ---------------------------------------------------------------- monotonic

SCHEMES = [M.Scheme.erasure(4, 2), M.Scheme.erasure(6, 3), M.Scheme.replication(3), M.Scheme.replication(2),
           M.Scheme.erasure(4, 2, placement=(6, 0, 0)), M.Scheme.erasure(4, 2, placement=(3, 2, 1))]


@settings(max_examples=60, deadline=None)
@given(scheme=st.sampled_from(SCHEMES), afr=st.floats(0.001, 0.5), mttr_hours=st.floats(0.001, 2000),
       factor=st.floats(1.5, 100), alpha=st.sampled_from([0, 0.001, 0.1]), lse=st.sampled_from([0, 0.08, 50]),
       parallel=st.booleans())
def test_monotonic_in_repair_time_and_failure_rate(scheme, afr, mttr_hours, factor, alpha, lse, parallel):
    i = M.Inputs(afr=afr, mttr_hours=mttr_hours, az_outages_per_year=alpha, lse_per_tb=lse, object_bytes=1e9,
                 repair="parallel" if parallel else "serial")
    slower = i.with_(mttr_hours=mttr_hours * factor)
    worse = i.with_(afr=min(0.99, afr * factor))
    base = exact_mttdl(scheme, i)
    if scheme.m:           # with no spare there is nothing to repair: the repair time cannot matter
        assert exact_mttdl(scheme, slower) < base
    assert exact_mttdl(scheme, worse) < base
    assert M.evaluate(scheme, slower).p_year >= M.evaluate(scheme, i).p_year
    assert M.evaluate(scheme, worse).p_year >= M.evaluate(scheme, i).p_year
    assert M.evaluate(scheme, slower).nines <= M.evaluate(scheme, i).nines


# ---------------------------------------------------------------- which mode dominates

def test_az_outages_dominate_a_one_zone_placement():
    r = M.evaluate(M.Scheme.erasure(4, 2, placement=(6, 0, 0)), M.Inputs(az_outages_per_year=0.01))
    assert r.dominant == M.AZ_ALONE and r.shares[M.AZ_ALONE] > 0.99
    assert r.p_year == pytest.approx(0.01, rel=0.01) and r.nines == pytest.approx(2, abs=0.01)


def test_az_outages_with_disk_failures_dominate_4_2_over_three_azs():
    """2,2,2 leaves no spare once an AZ is gone: a disk failure during the outage loses the stripe."""
    r = M.evaluate(M.Scheme.erasure(4, 2), M.Inputs(mttr_hours=0.1, az_outages_per_year=0.01))
    assert r.dominant == M.AZ_DISKS and r.shares[M.AZ_DISKS] > 0.99


def test_disk_failures_dominate_without_az_outages_and_with_slow_repair():
    r = M.evaluate(M.Scheme.replication(3), M.Inputs(mttr_hours=72, az_outages_per_year=0.001))
    assert r.dominant == M.DISK and r.shares[M.DISK] > 0.9
    r = M.evaluate(M.Scheme.erasure(4, 2), M.Inputs(mttr_hours=72, **DISKS_ONLY))
    assert r.dominant == M.DISK and r.shares[M.DISK] == 1


def test_latent_sector_errors_dominate_large_objects_on_bad_disks():
    r = M.evaluate(M.Scheme.erasure(4, 2), M.Inputs(lse_per_tb=10, object_bytes=1e9, az_outages_per_year=0))
    assert r.dominant == M.LSE


def test_numbers_a_reader_checks():
    r = M.evaluate(M.Scheme.erasure(4, 2), M.Inputs(mttr_hours=1, **DISKS_ONLY))
    assert r.p_year == pytest.approx(1 - math.exp(-1 / r.mttdl_years))
    assert r.nines == pytest.approx(-math.log10(r.p_year))
    assert r.lost_per_year(1e10) == pytest.approx(1e10 * r.p_year)
    assert M.durability_percent(1e-11) == "99.999999999%"
    assert M.durability_percent(0.5) == "50%"
    assert M.spread(6, 3) == (2, 2, 2) and M.spread(5, 3) == (2, 2, 1) and M.spread(9, 3) == (3, 3, 3)


# ---------------------------------------------------------------- the command, with no cluster

def test_units():
    assert parse_duration("5s") == 5 and parse_duration("2h") == 7200 and parse_duration("30min") == 1800
    assert parse_duration("250ms") == 0.25 and parse_duration("1.5d") == 1.5 * 86400 and parse_duration("7") == 7
    assert parse_size("4TB") == 4e12 and parse_size("1MiB") == 1 << 20 and parse_size("1e6") == 1e6
    assert parse_rate("21MB/s") == 21e6 and parse_rate("1GB") == 1e9
    for bad in ("5 parsecs", "h", ""):
        with pytest.raises(Exception):
            parse_duration(bad)


def test_command_without_a_cluster(capsys):
    assert main(["durability", "--no-cluster", "--json", "--objects", "1e10"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cluster"] is False
    rep = out["repair_inputs"]
    assert not rep["rebuild_bytes_per_s"]["measured"] and "default" in rep["rebuild_bytes_per_s"]["source"]
    # The stated defaults: a node is gone after the 10 min down timeout, then 4 TB at the default rebuild rate.
    from minis3.durability.measure import DEFAULT_REBUILD_BYTES_PER_S
    assert rep["detection_s"] == 600 and rep["down_after_s"]["value"] == 600
    # (the default rebuild rate is the topology's rebuild limit, 25 MB/s, where that is below
    # make bench-scrub's unlimited DEFAULT_REBUILD_BYTES_PER_S: a rebuild never outruns its limit)
    assert rep["rebuild_bytes_per_s"]["value"] == min(25e6, DEFAULT_REBUILD_BYTES_PER_S)
    assert rep["mttr_s"] == pytest.approx(600 + 4e12 / min(25e6, DEFAULT_REBUILD_BYTES_PER_S))
    # A silent bitflip: one audit cycle at the full rate on an idle node, at the busy share of it
    # on a node busy all the time; the bound stated is the busy cycle plus the next pass.
    assert rep["audit_busy_share"]["value"] == 0.25
    assert rep["audit_cycle_s"] == pytest.approx(4e12 / 8e6)
    assert rep["audit_cycle_busy_s"] == pytest.approx(4e12 / (8e6 * 0.25))
    assert rep["bitflip_detection_s"] == pytest.approx(4e12 / (8e6 * 0.25) + 60)
    assert out["result"]["scheme"] == "4+2 over 3 AZs" and out["result"]["placement"] == [2, 2, 2]
    assert 0 < out["result"]["nines"] < 20
    names = [c["scheme"] for c in out["comparison"]]
    assert names == ["4+2 over 3 AZs", "6+3 over 3 AZs", "3 copies over 3 AZs", "4+2 one zone", "S3's claim"]
    assert len(out["sensitivity"]["nines"]) == len(out["sensitivity"]["detection_s"])


def test_command_what_ifs(capsys):
    assert main(["durability", "--no-cluster", "--replicas", "3", "--mttr", "5s", "--afr", "0.05"]) == 0
    text = capsys.readouterr().out
    assert "3 copies over 3 AZs" in text and "MTTR            5 s" in text and "comparison" in text
    assert main(["durability", "--no-cluster", "--scheme", "6+3", "--placement", "3,3,2"]) == 2
    assert "placement" in capsys.readouterr().err


def test_the_model_is_pure():
    """model and simulate import no aiohttp and no cluster code (docs/ARCHITECTURE.md: the pure core)."""
    import subprocess
    import sys
    code = ("import sys, minis3.durability.model, minis3.durability.simulate; "
            "bad = [m for m in sys.modules if m.startswith(('aiohttp', 'minis3.cluster', 'minis3.rpc'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
