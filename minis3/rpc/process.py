"""How every minis3 process starts: its command line, its topology, its log and its name in
traces, then its HTTP server. Each process's ``main()`` (frontend, storage node, metadata
replica, scrubber, console, DNS server) is these three calls around what is its own."""
from __future__ import annotations

import argparse
import gc
import logging
import ssl

from aiohttp import web

from .. import config
from . import clock, failpoints, tracing
from .logs import setup_logging


def process_args(prog: str, argv: list[str] | None, add=None) -> tuple[argparse.Namespace, config.Topology]:
    """Parse ``--topology/--data-dir/--region/--tls`` and what ``add(parser)`` adds; the
    arguments and the topology they name."""
    p = argparse.ArgumentParser(prog=prog)
    config.add_arguments(p)
    if add is not None:
        add(p)
    a = p.parse_args(argv)
    return a, config.from_args(a)


def begin(name: str, topo: config.Topology, log: logging.Logger, *, trace_name: str | None = None) -> None:
    """The log format with this process's name, a loud warning when it runs on a secret
    everyone knows, the failpoints ``$MINIS3_FAILPOINTS`` arms (rpc/failpoints.py; an entry
    naming a process is matched against ``trace_name``, else ``name``), and its name on the
    spans it records (``trace_name``, if it records any); the clock offset ``$MINIS3_CLOCK_SKEW``
    gives it (rpc/clock.py), by the same name."""
    setup_logging(name)
    config.warn_if_demo_secret(topo, log)
    failpoints.arm_from_environment(trace_name or name,
                                    topo.data_dir / "run" / f"failpoints-{(trace_name or name).replace(' ', '-')}.json")
    clock.skew_from_environment(trace_name or name)
    if trace_name is not None:
        tracing.configure(trace_name)


#: Container objects allocated (net of those freed) between two young collections of the
#: cyclic garbage collector; Python's default is 700.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Keep the cyclic garbage collector off a busy process's hot path.

    Reference counting frees almost every object a request makes as soon as the
    request ends; the cyclic collector is only needed for groups of objects
    that refer to each other (an aborted PUT's tasks, an exception holding its
    frames). At Python's default threshold it ran about once every 15
    requests in a frontend serving 32 clients, each young collection walking
    the objects of every request still in flight (which then survive into the
    older generations, to be walked again there), and a full collection about
    every 2,000 requests walked everything the process ever made: `perf` put
    ~7% of the frontend's CPU in the collector. So, once start-up is done:

    - ``gc.freeze()`` moves what start-up made (modules, the topology, the
      application) into the permanent generation, which no collection walks
      (meta/gcfreeze.py does the same for the index's records as they grow);
    - a young collection waits for ``GC_YOUNG_THRESHOLD`` new objects instead
      of 700, so cyclic garbage lives a little longer: a few MB at most, or
      until the frontend's idle trim collects it (frontend/app.py).

    Measured (docs/performance.md): the frontend's CPU per 4 KiB PUT ×32
    0.77 → 0.67 ms, 4 KiB PUTs +14% and 64 KiB PUTs +10%.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def serve(app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
    """Serve until SIGINT or SIGTERM (no banner, no aiohttp access log: minis3 logs its own),
    with the garbage collector tuned for a server (:func:`tune_gc`)."""
    tune_gc()
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True,
                ssl_context=ssl_context)
