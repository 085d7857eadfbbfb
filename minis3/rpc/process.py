"""How every minis3 process starts: its command line, its topology, its log and its name in
traces, then its HTTP server. Each process's ``main()`` (frontend, storage node, metadata
replica, scrubber, console, DNS server) is these three calls around what is its own."""
from __future__ import annotations

import argparse
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


def serve(app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
    """Serve until SIGINT or SIGTERM (no banner, no aiohttp access log: minis3 logs its own)."""
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True,
                ssl_context=ssl_context)
