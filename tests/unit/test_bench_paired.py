"""The benchmark's side-by-side pass, its pure parts: the order of the turns,
the groups of phases, how a side's turns are pooled, and the targets and
report rows read from them."""
from __future__ import annotations

import pytest

from minis3.bench import paired, report
from minis3.bench.runner import Runner
from minis3.bench.stats import Phase
from minis3.bench.suite import _before_targets, _side_by_side_section
from minis3.bench.workloads import KiB, MiB, Settings

from .bench_support import row


def test_turns_alternate_a_b_b_a():
    assert paired.order(1) == [0, 1]
    assert paired.order(2) == [0, 1, 1, 0]
    assert paired.order(4) == [0, 1, 1, 0, 0, 1, 1, 0]
    for n in (2, 4, 6):
        turns = paired.order(n)
        assert turns.count(0) == turns.count(1) == n
        # Balanced: both sides' turns have the same mean position.
        assert sum(i for i, w in enumerate(turns) if w == 0) == sum(i for i, w in enumerate(turns) if w == 1)
    for n in (0, 3, 5, -2):
        with pytest.raises(ValueError):
            paired.order(n)
    assert paired.order_letters(2) == "A B B A"


def test_groups_are_the_phases_the_targets_read():
    s = Settings(small_ops=("GET",))
    got = [(g.workloads, g.sizes, g.concurrency, g.small_ops, g.large_sizes) for g in paired.groups(s)]
    big = (256 * MiB,)
    assert got == [(("small",), (4 * KiB,), (32,), ("GET",), s.large_sizes),
                   (("small",), (64 * KiB,), (32,), ("GET",), s.large_sizes),
                   (("small",), (4 * KiB,), (1,), (), s.large_sizes),           # its PUTs alone
                   (("large",), s.sizes, s.concurrency, ("GET",), big)]
    # Only ×1: no second ×1 group; no small or large workload: no group at all.
    assert [g.concurrency for g in paired.groups(Settings(concurrency=(1,), workloads=("small",)))] == [(1,), (1,)]
    assert paired.groups(Settings(workloads=("list", "mixed"))) == []


def _phase(op, ops, seconds, latency, size=4096, workload="small"):
    ph = Phase(workload, op, size, 32)
    for _ in range(ops):
        ph.record(latency, size, None)
    ph.wall, ph.client_cpu, ph.machine_cpu = seconds, 0.1, 0.5
    ph.extra["bystander_cpu_s"] = 0.01
    return ph


def test_a_sides_turns_pool_into_one_row_each_with_its_turn_rates():
    runner = Runner(client=None, sample_rss=False)
    runner.phases = [_phase("PUT", 100, 1.0, 0.010), _phase("GET", 300, 1.0, 0.002)]
    paired.pool(runner, 0)                                       # the first turn: nothing to fold into
    assert [p.extra["turns"] for p in runner.phases] == [[100.0], [300.0]]
    runner.phases += [_phase("PUT", 50, 1.0, 0.030), _phase("GET", 200, 1.0, 0.004)]
    paired.pool(runner, 2)
    assert len(runner.phases) == 2
    put = runner.phases[0].row(2)
    assert put["ops"] == 150 and put["ops_per_s"] == 75.0 and put["turns"] == [100.0, 50.0]
    assert put["p99_ms"] == 30.0 and put["p50_ms"] == 10.0      # percentiles over every sample
    assert put["bystander_cpu_s"] == 0.02 and put["seconds"] == 2.0
    assert paired.idle_cores([put]) == 0.01 and paired.idle_cores([{"seconds": 1.0}]) is None
    assert runner.phases[1].row(2)["turns"] == [300.0, 200.0]
    big = _phase("PUT", 2, 2.0, 1.0, size=256 * MiB, workload="large")
    assert paired.turn_rate(big) == round(2 * 256 * MiB / 2.0 / 1e6, 1)    # MB/s for large objects


SIDE = {"rounds": 2, "order": "A B B A", "idle_cores": {"minis3": 0.03, "moto": 0.0},
        "minis3": [row("small", "PUT", 4096, 32, ops_per_s=1200.0, turns=[1190.0, 1210.0]),
                   row("small", "PUT", 4096, 1, ops_per_s=400.0, p50_ms=2.0),
                   row("large", "PUT", 256 << 20, 1, mb_per_s=250.0)],
        "moto": [row("small", "PUT", 4096, 32, ops_per_s=380.0, turns=[370.0, 390.0]),
                 row("small", "PUT", 4096, 1, ops_per_s=390.0, p50_ms=2.5),
                 row("large", "PUT", 256 << 20, 1, mb_per_s=150.0)]}
# The same phases run one after the other, moto_server's in a faster hour;
# and a 64 KiB phase the side-by-side pass did not run.
APART = ([row("small", "PUT", 4096, 32, ops_per_s=850.0), row("small", "PUT", 4096, 1, ops_per_s=300.0, p50_ms=3.0),
          row("large", "PUT", 256 << 20, 1, mb_per_s=214.0), row("small", "PUT", 65536, 32, ops_per_s=480.0)],
         [row("small", "PUT", 4096, 32, ops_per_s=414.0), row("small", "PUT", 4096, 1, ops_per_s=380.0, p50_ms=2.5),
          row("large", "PUT", 256 << 20, 1, mb_per_s=167.0), row("small", "PUT", 65536, 32, ops_per_s=300.0)])


def test_targets_read_the_side_by_side_rows_and_note_the_other_ratio():
    got = {t["target"]: t for t in report.targets(*APART, {}, None, SIDE)}
    put = got["4 KiB PUT ops/s at ×32, minis3 ÷ moto_server"]
    assert put["value"] == round(1200 / 380, 3) and put["met"] is True
    assert put["note"] == "side by side (A B B A); one after the other: 2.05"
    large = got["large PUT MB/s, minis3 ÷ moto_server"]
    assert large["value"] == round(250 / 150, 3) and large["met"] is False
    latency = got["4 KiB PUT p50 at ×1, moto_server ÷ minis3 (latency)"]
    assert latency["value"] == 1.25 and latency["met"] is True              # 2.0 ms against moto's 2.5
    # A target the pass has no rows for (64 KiB) reads the workloads run one after the other.
    k64 = got["64 KiB PUT ops/s at ×32, minis3 ÷ moto_server"]
    assert k64["value"] == 1.6 and k64["met"] is True and k64["note"] == ""
    assert got["64 KiB GET ops/s at ×32, minis3 ÷ moto_server"]["value"] is None      # in neither
    # Side-by-side rows with no such rows run one after the other: "-" in the note.
    alone = {t["target"]: t for t in report.targets(APART[0][:1], [], {}, None, SIDE)}
    assert alone["4 KiB PUT ops/s at ×32, minis3 ÷ moto_server"]["note"].endswith("one after the other: -")
    # Without the pass: the one-after-the-other ratios, no note.
    apart = {t["target"]: t for t in report.targets(*APART, {})}
    assert apart["4 KiB PUT ops/s at ×32, minis3 ÷ moto_server"]["value"] == round(850 / 414, 3)
    assert apart["4 KiB PUT ops/s at ×32, minis3 ÷ moto_server"]["note"] == ""
    assert apart["4 KiB PUT p50 at ×1, moto_server ÷ minis3 (latency)"]["met"] is False   # 3.0 ms against 2.5


def test_side_by_side_section_shows_both_ratios_the_turns_and_the_idle_side():
    cells = report.side_by_side_cells(SIDE, *APART)
    assert cells[0] == ["small", "PUT", "4 KiB", "32", "1,200", "380", "0.0", "0.0", "1.00 / 1.00",
                        "1.00 / 1.00", "3.16×", "2.05×", "0 / 0", "1,190, 1,210 / 370, 390"]
    assert cells[2][-4:] == ["1.67×", "1.28×", "0 / 0", "- / -"]
    text = "\n".join(_side_by_side_section({"side_by_side": SIDE, "minis3": APART[0], "moto": APART[1]}))
    assert "in the order A B B A" in text and "used 0.030 of a core meanwhile" in text
    assert "| small | PUT | 4 KiB | 32 | 1,200 | 380 |" in text
    assert _side_by_side_section({"minis3": [], "moto": []}) == []


def test_an_earlier_run_gets_the_targets_it_did_not_have_from_its_rows():
    before = {"targets": [{"target": "4 KiB PUT ops/s at ×32, minis3 ÷ moto_server", "value": 1.5}],
              "minis3": APART[0], "moto": APART[1]}
    got = {t["target"]: t["value"] for t in _before_targets(before)}
    assert got["4 KiB PUT ops/s at ×32, minis3 ÷ moto_server"] == 1.5            # as it stored it
    assert got["large PUT MB/s, minis3 ÷ moto_server"] == round(214 / 167, 3)    # computed again
    assert _before_targets(None) is None
