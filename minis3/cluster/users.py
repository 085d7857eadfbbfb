"""`minis3 user add|list|remove`: access keys of a running cluster, kept in its metadata
service (minis3/meta/users.py), beside the topology's fixed ``[[credentials]]``.

    minis3 user add --account acme [--user alice]   a new key pair (the secret is shown once)
    minis3 user list                                every key: the topology's and the table's
    minis3 user remove AKIA...                      a table key stops working within 5 s
"""
from __future__ import annotations

import asyncio
import json
import sys

from ..config import Topology
from ..core import access
from ..core import errors as E
from ..core.hlc import HLC
from ..meta import users
from ..meta.client import MetaClient
from ..rpc.http import client_session


async def _with_registry(topo: Topology, work):
    async with client_session(topo.cluster_secret, timeout_s=30) as session:
        meta = MetaClient.for_topology(session, topo.region_topology(topo.registry_region), hlc=HLC())
        return await work(meta.as_account(None))


def add(topo: Topology, account: str, user: str | None, as_json: bool) -> int:
    try:
        u = asyncio.run(_with_registry(topo, lambda meta: users.add(meta, topo.cluster_secret, account, user,
                                                                   set(topo.credentials))))
    except E.S3Error as exc:
        print(f"minis3 user add: {exc.message}", file=sys.stderr)
        return 2
    doc = {"access_key": u.access_key, "secret_key": u.secret, "account": u.account,
           "account_id": access.account_id(u.account), "user": u.user, "arn": access.principal_of(u.account, u.user).arn}
    if as_json:
        print(json.dumps(doc))
    else:
        print(f"access key  {u.access_key}\nsecret key  {u.secret}   (shown once: keep it)\n"
              f"account     {u.account} ({doc['account_id']})\nprincipal   {doc['arn']}")
    return 0


def rows(topo: Topology) -> list[dict]:
    table = asyncio.run(_with_registry(topo, lambda meta: users.read_all(meta, topo.cluster_secret)))
    out = [{"access_key": ak, "account": topo.accounts.get(ak, ak), "user": topo.users.get(ak), "from": "topology"}
           for ak in topo.credentials]
    out += [{"access_key": u.access_key, "account": u.account, "user": u.user, "from": "minis3 user add",
             "created_ms": u.created_ms} for u in sorted(table.values(), key=lambda u: u.created_ms)]
    for r in out:
        r["arn"] = access.principal_of(r["account"], r["user"]).arn
    return out


def list_users(topo: Topology, as_json: bool) -> int:
    got = rows(topo)
    if as_json:
        print(json.dumps(got))
        return 0
    print(f"{'ACCESS KEY':<22} {'ACCOUNT':<16} {'PRINCIPAL':<48} FROM")
    for r in got:
        print(f"{r['access_key']:<22} {r['account']:<16} {r['arn']:<48} {r['from']}")
    return 0


def remove(topo: Topology, access_key: str) -> int:
    if access_key in topo.credentials:
        print(f"minis3 user remove: {access_key} is in the topology's [[credentials]]: remove it there",
              file=sys.stderr)
        return 2
    if not asyncio.run(_with_registry(topo, lambda meta: users.remove(meta, access_key))):
        print(f"minis3 user remove: no such access key: {access_key}", file=sys.stderr)
        return 2
    print(f"removed {access_key} (frontends stop taking it within {users.REFRESH_S:.0f} s)")
    return 0
