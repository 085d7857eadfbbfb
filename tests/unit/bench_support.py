"""What the benchmark's unit tests share (test modules import no other test module)."""


def row(workload, op, size, conc, **kw):
    """A result row as a phase makes it (stats.Phase.row), with these fields changed."""
    base = dict(workload=workload, op=op, size=size, concurrency=conc, ops=10, errors=0, error_codes={},
                ops_per_s=0.0, mb_per_s=0.0, p50_ms=1.0, p90_ms=1.0, p99_ms=1.0, client_cpu_pct=10.0,
                machine_cpu_pct=50.0, machine_cpu_max_pct=200, server_cpu_ms_per_op=1.0)
    base.update(kw)
    return base
