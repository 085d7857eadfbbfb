"""A busy frontend leaves the cyclic garbage collector alone (rpc/process.tune_gc)."""
from concurrent.futures import ThreadPoolExecutor

REQUESTS = 1200
CLIENTS = 32


def _young_collections(cluster) -> float:
    """The frontend's ``python_gc_collections_total`` for generation 0 (prometheus_client's GC collector)."""
    return next(s.value for s in cluster.frontend_samples("python_gc_collections_total")
                if s.labels["generation"] == "0")


def test_a_busy_frontend_runs_few_young_collections(cluster, s3, bucket):
    """32 clients PUT then GET small objects at once: at Python's default
    threshold the frontend ran about one young collection every 15 requests
    under such a load; tuned, a few in the whole run."""
    body = b"g" * 4096

    def one(i: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"k{i % 100}", Body=body)
        assert s3.get_object(Bucket=bucket, Key=f"k{i % 100}")["Body"].read() == body

    before = _young_collections(cluster)
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(REQUESTS // 2)))
    ran = _young_collections(cluster) - before
    assert ran < REQUESTS / 100, f"{ran:.0f} young collections for {REQUESTS} requests"
