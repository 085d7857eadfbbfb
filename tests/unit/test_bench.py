"""The benchmark's pure parts: percentiles, rows, ceilings, targets; and that
its client signs exactly as botocore does."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from minis3.bench import report
from minis3.bench.client import Payload, S3Client
from minis3.bench.main import parse_size
from minis3.bench.stats import Phase, harmonic_ceiling, percentile

from .bench_support import row as _row


def test_percentile_nearest_rank():
    v = sorted(float(i) for i in range(1, 101))
    assert percentile(v, 50) == 50 and percentile(v, 90) == 90 and percentile(v, 99) == 99
    assert percentile(v, 100) == 100 and percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_phase_row_counts_only_successes_and_lists_error_codes():
    ph = Phase("small", "PUT", 4096, 8)
    for _ in range(9):
        ph.record(0.010, 4096, None)
    ph.record(0.5, 0, "SlowDown")
    ph.wall, ph.client_cpu, ph.machine_cpu = 2.0, 0.5, 3.0
    r = ph.row(cores=2)
    assert r["ops"] == 9 and r["errors"] == 1 and r["error_codes"] == {"SlowDown": 1}
    assert r["ops_per_s"] == 4.5 and r["p99_ms"] == 10.0
    assert r["client_cpu_pct"] == 25.0 and r["machine_cpu_pct"] == 150.0
    assert r["server_cpu_ms_per_op"] == round(1000 * 2.5 / 9, 3)   # everything but the client
    ph.server_cpu = 0.9                                               # the server's own pids
    assert ph.row(cores=2)["server_cpu_ms_per_op"] == 100.0


def test_phases_run_apart_merge_into_one_row():
    a, b = Phase("multipart", "COMPLETE", 10 << 20, 1), Phase("multipart", "COMPLETE", 10 << 20, 1)
    for ph, secs, role_cpu, rss, fe in ((a, 0.020, 0.010, 90.0, 4.0), (b, 0.012, 0.030, 120.0, 2.0)):
        ph.record(secs, 0, None)
        ph.wall, ph.client_cpu, ph.machine_cpu, ph.server_cpu = secs, 0.001, 0.05, role_cpu
        ph.server_cpu_by_role = {"frontend": role_cpu, "replicas": 0.0}
        ph.extra.update(parts=2, frontend_rss_peak_mb=rss, frontend_cpu_ms_per_op=fe)
    c = Phase("multipart", "COMPLETE", 10 << 20, 1)
    c.record(0.015, 0, None)
    c.record(1.0, 0, "InternalError")
    c.wall = 1.015
    a.absorb(b)
    a.absorb(c)                                      # one without CPU figures: adds what it has
    r = a.row(cores=2)
    assert r["ops"] == 3 and r["p50_ms"] == 15.0 and r["errors"] == 1   # the median of three samples
    assert r["seconds"] == round(0.020 + 0.012 + 1.015, 3)
    assert r["server_cpu_ms_per_op"] == round(1000 * 0.040 / 3, 3)
    assert r["cpu_ms_per_op_by_role"]["frontend"] == round(1000 * 0.040 / 3, 3)
    assert r["frontend_rss_peak_mb"] == 120.0 and r["parts"] == 2
    with pytest.raises(ValueError):
        a.absorb(Phase("multipart", "PUT parts", 10 << 20, 4))


def test_harmonic_ceiling():
    assert harmonic_ceiling([100, 100]) == 50
    assert round(harmonic_ceiling([600, 1500, 4000, 30000]), 1) == 382.2


def test_parse_size():
    assert parse_size("4KiB") == 4096 and parse_size("256MiB") == 256 << 20 and parse_size("1g") == 1 << 30
    assert parse_size("100") == 100


LIMITS = {"md5_mb_s": 600.0, "sha256_mb_s": 1500.0, "ec_encode_mb_s": 4000.0, "xxh3_mb_s": 30000.0,
          "ec_decode_data_mb_s": 10000.0, "bare_req_per_s": 3000.0, "fsync_rename_creates_per_s": 1200.0}


def test_ceilings_put_each_result_beside_its_bound():
    rows = [_row("small", "PUT", 4096, 32, ops_per_s=600.0), _row("small", "PUT", 65536, 32, ops_per_s=50.0),
            _row("large", "PUT", 256 << 20, 1, mb_per_s=191.1), _row("large", "GET", 256 << 20, 1, mb_per_s=500.0)]
    checks = {(c["result"], c["ceiling"]): c for c in report.ceilings(rows, LIMITS)}
    assert checks[("small PUT 4 KiB ×32 ops/s", "bare aiohttp req/s")]["ratio"] == 0.2
    assert checks[("small PUT 64 KiB ×32 ops/s", "fsync'd fragment creates/s ÷ 6 fragments")]["ratio"] == 0.25
    put = checks[("large PUT 256 MiB MB/s", "one core doing MD5+SHA-256+encode+xxh3")]
    assert put["ceiling_value"] == 382.2 and put["ratio"] == 0.5
    assert not any(c == "every core doing the two hops and the work" for _, c in checks)  # no hop CPU measured


def test_the_whole_machine_ceiling_adds_the_hops_cpu_to_the_work():
    # Two cores; the bare two-hop upload cost 2 ms of CPU a MB (client, relay,
    # origins), the work one core does at 382.2 MB/s 2.616 ms: 2 / 4.616 ms.
    lim = dict(LIMITS, relay_put_cpu_ms_per_mb=2.0, relay_get_cpu_ms_per_mb=1.0, cores=2)
    got = report.derived_ceilings(lim)
    assert got["put_machine_mb_s"] == round(2 / (0.002 + 1 / 382.2), 1) == 433.2
    assert got["get_machine_mb_s"] == round(2 / (0.001 + 1 / got["get_work_mb_s"]), 1)
    assert report.derived_ceilings(dict(lim, cores=4))["put_machine_mb_s"] == 866.5     # twice the cores
    rows = [_row("large", "PUT", 256 << 20, 1, mb_per_s=216.6)]
    checks = {c["ceiling"]: c for c in report.ceilings(rows, lim)}
    assert checks["every core doing the two hops and the work"]["ratio"] == 0.5
    assert "every core: the two-hop upload's CPU + MD5+SHA-256+encode+xxh3, MB/s" in {
        label for label, _ in report.limit_cells(lim)}


def test_targets_are_ratios_from_one_run():
    mine = [_row("small", "PUT", 4096, 32, ops_per_s=900.0), _row("small", "GET", 4096, 32, ops_per_s=900.0),
            _row("large", "PUT", 256 << 20, 1, mb_per_s=300.0), _row("large", "GET", 256 << 20, 1, mb_per_s=600.0),
            _row("small", "GET", 4096, 1, frontend_rss_peak_mb=50.0),
            _row("large", "PUT", 16 << 20, 1, mb_per_s=300.0, frontend_rss_peak_mb=55.0),
            _row("large", "GET", 256 << 20, 1, mb_per_s=600.0, frontend_rss_peak_mb=60.0),
            _row("list", "LIST", 1000, 1, p50_ms=10.0), _row("list", "LIST", 100_000, 1, p50_ms=20.0)]
    moto = [_row("small", "PUT", 4096, 32, ops_per_s=200.0), _row("small", "GET", 4096, 32, ops_per_s=250.0),
            _row("large", "PUT", 256 << 20, 1, mb_per_s=130.0), _row("large", "GET", 256 << 20, 1, mb_per_s=305.0)]
    got = {t["target"]: t for t in report.targets(mine, moto, LIMITS)}
    assert got["4 KiB PUT ops/s at ×32, minis3 ÷ moto_server"]["met"] is True          # 4.5 ≥ 3
    assert got["4 KiB GET ops/s at ×32, minis3 ÷ moto_server"]["met"] is False         # 3.6 < 4
    assert got["large GET MB/s, minis3 ÷ moto_server"]["value"] == round(600 / 305, 3)
    assert got["large PUT MB/s ÷ one-core ceiling of its work"]["met"] is True
    rss = next(t for t in got.values() if t["target"].startswith("frontend RSS"))
    assert rss["met"] is True and rss["value"] == round(55 / 60, 3) and "50 MiB with small" in rss["note"]
    lst = next(t for t in got.values() if t["target"].startswith("LIST page time"))
    assert lst["value"] == 0.5 and lst["met"] is False                                  # 2× slower at 100k


def test_completion_target_compares_the_median_completions():
    mine = [_row("multipart", "COMPLETE", 10 << 20, 1, ops=3, p50_ms=15.0, parts=2),
            _row("multipart", "COMPLETE", 1 << 30, 1, ops=3, p50_ms=28.0, parts=128),
            _row("multipart", "COMPLETE", 2 << 30, 1, ops=3, p50_ms=18.0, parts=2)]
    done = next(t for t in report.targets(mine, [], LIMITS) if t["target"].startswith("CompleteMultipartUpload"))
    assert done["value"] == round(15 / 18, 3) and done["met"] is True
    assert "2 and 2 parts" in done["target"]
    assert "medians of 3 and 3 completions" in done["note"] and "1 GiB in 128 parts: 28 ms" in done["note"]


def test_markdown_table_escapes_pipes():
    md = report.markdown_table(["a", "b"], [["x|y", "1"]])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]


async def test_bench_client_signs_like_botocore():
    """The load generator's own signer: same headers as botocore's S3SigV4Auth."""
    now = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.timezone.utc)
    payload = Payload.of(b"x" * 4096)
    client = S3Client("http://127.0.0.1:9000", "AKIDEXAMPLE", "secret/KEY+1", "eu-west-1")
    try:
        url = client.url("bench-bucket", "small/4096/32/00000042")
        with mock.patch("minis3.bench.client.dt.datetime") as fake:
            fake.now.return_value = now
            ours = client._signed("PUT", url, payload.sha256, {"Content-Length": "4096"})
    finally:
        await client.close()
    req = AWSRequest(method="PUT", url=url, headers={"Content-Length": "4096"}, data=payload.data)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret/KEY+1"), "s3", "eu-west-1").add_auth(req)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
        assert ours[name] == req.headers[name]


def test_inter_az_latency_section_pairs_rows_without_and_with_the_delay():
    from minis3.bench.suite import _latency_section, latency_cells
    row = lambda op, size, p50, p99: {"op": op, "size": size, "p50_ms": p50, "p99_ms": p99}  # noqa: E731
    lat = {"delay_ms": 5.0,
           "without": [row("PUT", 4096, 11.0, 20.0), row("GET", 4096, 3.5, 8.0), row("DELETE", 4096, 9, 9)],
           "with": [row("PUT", 4096, 17.5, 30.0), row("GET", 4096, 9.0, 15.0), row("DELETE", 4096, 9, 9)]}
    cells = latency_cells(lat)
    assert cells == [["PUT 4 KiB ×1", "11.0", "17.5", "+6.5", "20.0", "30.0"],
                     ["GET 4 KiB ×1", "3.5", "9.0", "+5.5", "8.0", "15.0"]]
    text = "\n".join(_latency_section(lat))
    assert "## Inter-AZ latency: 5 ms" in text and "| PUT 4 KiB ×1 | 11.0 | 17.5 | +6.5 |" in text
    assert _latency_section(None) == []


def test_versioning_ratios_become_targets_and_a_section():
    from minis3.bench.suite import _versioning_section
    row = lambda op, versions, p50, p99: {"op": op, "versions": versions, "p50_ms": p50, "p99_ms": p99,  # noqa: E731
                                          "ops": 100, "errors": 0}
    v = {"body_bytes": 100, "version_count": 1000, "list_keys": 1000, "list_old": 100, "settle_s": 2.0,
         "puts": {"count": 1000, "seconds": 8.0, "p50_ms": 8.0},
         "loads": {"0": {"keys": 1000, "seconds": 0.1}, "100": {"keys": 101_000, "seconds": 10.0}},
         "rows": [row("HEAD", 1, 2.0, 4.0), row("HEAD", 1000, 2.2, 4.0), row("LIST", 1, 20.0, 40.0),
                  row("LIST", 101, 40.0, 50.0)],
         "ratios": [{"op": "HEAD", "few": 1, "many": 1000, "p50": 1.1, "p99": 1.0},
                    {"op": "LIST", "few": 1, "many": 101, "p50": 2.0, "p99": 1.25}]}
    got = {t["target"]: t for t in report.targets([], None, {}, v)}
    head = got["HEAD of the current version flat in versions: p50 with 1 ÷ p50 with 1,000 versions"]
    assert head["value"] == round(1 / 1.1, 3) and head["met"] is True
    lst = got["a 1,000-key LIST page flat in versions: p50 with none ÷ p50 with 100 old versions a key"]
    assert lst["value"] == 0.5 and lst["met"] is False and "p99 1.25×" in lst["note"]
    text = "\n".join(_versioning_section(v))
    assert "## Versioning" in text and "| HEAD: ratio | 1,000 ÷ 1 | 1.10× | 1.00× |" in text
    assert "| LIST: ratio | 100 old a key ÷ none | **2.00×** | 1.25× |" in text     # over 1.5: in bold
    assert _versioning_section(None) == []
