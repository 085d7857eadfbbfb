"""What every lab of the course shares: the cluster it talks to, narration, commands, checks.

A lab runs against the cluster that `make run` started (no arguments: endpoint
http://127.0.0.1:9000, access key minis3admin, the built-in topology, data in
./data, so run it from the repository's root), or against any cluster given by
its topology file (``--topology PATH``, what ``tests/integration/test_labs.py``
does). Each step says what it does, runs it, prints what came back and checks
what the learner should see; a failed check ends the lab with exit status 1
and says what was expected and what happened instead.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

WIDTH = 100


class LabFailed(Exception):
    """A check failed: the system no longer behaves as the chapter says."""


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class Lab:
    def __init__(self, number: int | str, title: str, argv: list[str] | None = None):
        p = argparse.ArgumentParser(description=f"Lab {number}: {title}")
        p.add_argument("--topology", help="the cluster's topology file (default: the one `make run` starts)")
        p.add_argument("--data-dir", help="the cluster's data directory (default: the topology's, ./data)")
        args = p.parse_args(argv)
        from minis3 import config
        self.number, self.title = number, title
        self.topo_path = args.topology
        self.data_dir = args.data_dir
        self.topo = config.load(args.topology, data_dir=args.data_dir)
        self.endpoint = self.topo.frontend.url
        self.access_key, self.secret_key = next(iter(self.topo.credentials.items()))
        self.region = self.topo.region
        self.started = time.monotonic()
        self.passed = 0
        self._step = 0

    # -- narration -------------------------------------------------------------------------
    def banner(self) -> None:
        head = f"Lab {self.number}: {self.title}"
        print("=" * WIDTH)
        print(head)
        print(f"cluster: {self.endpoint} (access key {self.access_key}"
              + (f", topology {self.topo_path})" if self.topo_path else ", the `make run` cluster)"))
        print("=" * WIDTH, flush=True)

    def step(self, title: str) -> None:
        self._step += 1
        head = f"── Step {self._step}: {title} "
        print()
        print(head + "─" * max(4, WIDTH - len(head)), flush=True)

    def say(self, text: str) -> None:
        print(textwrap.fill(" ".join(text.split()), WIDTH, initial_indent="  ", subsequent_indent="  "), flush=True)

    def show(self, text: str, indent: str = "    ") -> None:
        for line in text.rstrip("\n").splitlines():
            print(indent + line)
        sys.stdout.flush()

    def check(self, ok: bool, seen: str, expected: str | None = None) -> None:
        """``seen``: what the learner should see (printed with a tick when true);
        ``expected``: the failure's explanation (defaults to ``seen``)."""
        if not ok:
            raise LabFailed(expected or f"expected: {seen}")
        self.passed += 1
        print(f"  ✓ {seen}", flush=True)

    # -- S3 clients ------------------------------------------------------------------------
    def s3(self, secret: str | None = None, attempts: int = 5, endpoint: str | None = None,
           region: str | None = None, **cfg):
        """A boto3 client for the cluster (or for ``endpoint``, signing for ``region``).
        ``attempts``: tries per request in all (botocore's ``total_max_attempts``;
        its ``max_attempts`` counts retries only)."""
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name=region or self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=secret or self.secret_key,
                            config=Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                                          connect_timeout=5, read_timeout=60, **cfg))

    def fresh_bucket(self, s3, name: str, empty: bool = True) -> str:
        """Create ``name`` (or reuse it from an earlier run, emptied)."""
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            if empty:
                while True:
                    keys = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket=name).get("Contents", [])]
                    if not keys:
                        break
                    s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        return name

    # -- commands --------------------------------------------------------------------------
    def _minis3_argv(self, args: tuple[str, ...]) -> tuple[list[str], str]:
        extra = []
        if self.topo_path:
            extra += ["--topology", str(self.topo_path)]
        if self.data_dir:
            extra += ["--data-dir", str(self.data_dir)]
        return [sys.executable, "-m", "minis3", *args, *extra], shlex.join(["minis3", *args, *extra])

    def minis3(self, *args: str, show: bool = True, ok_codes: tuple[int, ...] = (0,), timeout: float = 300,
               max_lines: int | None = None) -> subprocess.CompletedProcess:
        """Run ``minis3 ARGS`` as the learner would type it, print it and its output."""
        argv, typed = self._minis3_argv(args)
        if show:
            print(f"\n  $ {typed}", flush=True)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if show:
            lines = r.stdout.rstrip("\n").splitlines()
            if max_lines is not None and len(lines) > max_lines:
                lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
            self.show("\n".join(lines))
            if r.stderr.strip():
                self.show(r.stderr)
        if r.returncode not in ok_codes:
            raise LabFailed(f"`{typed}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def minis3_json(self, *args: str, show: bool = False, ok_codes: tuple[int, ...] = (0,)):
        """Run ``minis3 ARGS --json`` and return what it printed, parsed."""
        r = self.minis3(*args, "--json", show=show, ok_codes=ok_codes)
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise LabFailed(f"`minis3 {' '.join(args)} --json` printed no JSON:\n{r.stdout}\n{r.stderr}") from None

    def aws(self, *args: str, show: bool = True) -> subprocess.CompletedProcess:
        """The aws CLI (installed in the venv beside this Python), configured for the cluster."""
        exe = Path(sys.executable).parent / "aws"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key,
                   AWS_DEFAULT_REGION=self.region, AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        argv = [str(exe), "--endpoint-url", self.endpoint, *args]
        if show:
            print(f"\n  $ {shlex.join(['aws', *argv[1:]])}", flush=True)
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        if show:
            self.show(r.stdout)
            if r.stderr.strip():
                self.show(r.stderr)
        if r.returncode != 0:
            raise LabFailed(f"`aws {' '.join(args)}` exited {r.returncode}:\n{r.stderr}")
        return r

    def wait_az_healthy(self, az: str, timeout: float = 60) -> float:
        """Poll `minis3 health AZ` until every process of the AZ answers; returns the seconds waited."""
        t0 = time.monotonic()
        while True:
            r = self.minis3("health", az, show=False, ok_codes=(0, 1, 2))
            if r.returncode == 0:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise LabFailed(f"{az} was not healthy {timeout:.0f} s after it was revived:\n{r.stdout}{r.stderr}")
            time.sleep(0.3)

    # -- running -----------------------------------------------------------------------------
    def run(self, body) -> int:
        """Run ``body(lab)``; exit status 0 when every check passed, 1 otherwise."""
        self.banner()
        try:
            body(self)
        except LabFailed as exc:
            print()
            print(f"LAB {self.number} FAILED after {self.passed} checks ({time.monotonic() - self.started:.1f} s):")
            self.show(str(exc), "  ")
            return 1
        except Exception as exc:
            import traceback
            traceback.print_exc()
            print(f"\nLAB {self.number} FAILED: {exc.__class__.__name__}: {exc}"
                  + ("\n  is the cluster running? (`make run` in another terminal)" if "onnect" in str(exc) else ""))
            return 1
        print()
        print(f"LAB {self.number} PASSED: {self.passed} checks in {time.monotonic() - self.started:.1f} s")
        return 0
