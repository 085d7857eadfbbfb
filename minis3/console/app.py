"""The web console (``minis3 console``; ``minis3 up`` starts it on :9001).

Server-rendered pages (aiohttp + Jinja2, which escapes every key and name),
a little JavaScript, and live updates over Server-Sent Events; no front-end
build step. It shows what the command-line tools show:

* ``/``            the AZs and their processes (up, down, frozen; disk use),
                   with buttons to kill, freeze, thaw and revive an AZ
                   (``minis3 chaos``), and the buckets;
* ``/b/BUCKET``    the objects (by "folder"), and an upload form;
* ``/b/BUCKET/access`` its policy, CORS rules, Block Public Access, ownership and
                   ACL, changed through the S3 API as the user (console/access_page.py);
* ``/o/BUCKET/KEY`` one object: ``minis3 inspect`` (record, partition,
                   fragments per AZ with their health), a download link, and
                   after an upload the PUT's waterfall (its fragments landing);
                   the key's versions, each with where its fragments are, a
                   download link (a GET with its versionId) and a button that
                   removes it for good (a DELETE with its versionId);
                   ``?versionId=V`` shows that version in full;
* ``/requests``    a live feed of requests; ``/trace/ID`` one waterfall;
* ``/partitions``  the index's partition map; ``/scrubber`` its progress and findings;
* ``/live``        live charts (request rate and p50/p99 latency per operation,
                   bytes in and out per AZ, fragments not at full redundancy,
                   the scrubber's repairs) beside the AZs and their buttons, fed
                   once a second over SSE (``/live/events``) while a page is open
                   (console/live.py samples, console/series.py computes).

It is an S3 client like any other: it lists, uploads and presigns downloads
with the credentials the user logs in with (the topology's access keys, or one added by
``minis3 user add``), and
reads the cluster's internal state with the cluster secret, as the CLI does.
It binds loopback unless the topology says otherwise. A session is a random
id in an HttpOnly, SameSite=Strict cookie; every form that changes anything
carries the session's CSRF token.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp
import jinja2
from aiohttp import web
from defusedxml import ElementTree

from ..cluster import chaos, inspect as inspect_mod, partitions, status, where
from ..config import tls
from . import access_page, guard, live as live_mod, series
from ..cluster import trace as trace_mod
from ..config import Topology
from ..core import errors as E
from ..core import versions
from ..core.signing import presign_url, sign_request
from ..meta import users
from ..core.trace import layout, request_id_of
from ..rpc import listener
from ..rpc.http import client_session
from ..rpc.process import begin, process_args, serve

log = logging.getLogger("minis3.console")
HERE = Path(__file__).parent
COOKIE = "minis3_console"
LOGIN_COOKIE = "minis3_console_login"
SESSION_S = 8 * 3600
S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHAOS = {"kill": chaos.kill_az, "freeze": chaos.freeze_az, "thaw": chaos.thaw_az, "revive": chaos.revive_az}


class Console:
    def __init__(self, topo: Topology):
        self.topo = topo
        self.sessions: dict[str, dict] = {}       # session id → {access_key, secret_key, csrf, expires}
        self.throttle = guard.LoginThrottle()     # 5 failed logins per address per 5 minutes
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                      autoescape=jinja2.select_autoescape(["html"]))
        self.env.filters["human"] = lambda n: "-" if n is None else where.human(int(n))
        self.env.filters["quote"] = lambda s: quote(s, safe="/")
        self.internal: aiohttp.ClientSession | None = None
        self.s3: aiohttp.ClientSession | None = None
        self.live: live_mod.LiveSampler | None = None

    # -- plumbing ----------------------------------------------------------------------
    async def start(self, app: web.Application) -> None:
        self.internal = client_session(self.topo.cluster_secret, timeout_s=30)
        # Over HTTPS (`minis3 up --tls`) the frontend's certificate is the data directory's CA's.
        self.s3 = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300), auto_decompress=False,
                                        connector=aiohttp.TCPConnector(ssl=tls.client_context(self.topo) or True))
        self.live = live_mod.LiveSampler(self.topo, self.internal, self.s3)

    async def stop(self, app: web.Application) -> None:
        if self.live is not None:
            await self.live.stop()
        for s in (self.internal, self.s3):
            if s is not None:
                await s.close()

    def render(self, name: str, request: web.Request, **ctx) -> web.Response:
        user = request.get("user")
        html = self.env.get_template(name).render(user=user, csrf=user and user["csrf"], topo=self.topo,
                                                  path=request.path, **ctx)
        return web.Response(text=html, content_type="text/html")

    @web.middleware
    async def auth(self, request: web.Request, handler):
        """Every page but the login form and static files needs a session."""
        if request.path in ("/login", "/health") or request.path.startswith("/static/"):
            return await handler(request)
        sid = request.cookies.get(COOKIE)
        user = self.sessions.get(sid or "")
        if user is None or user["expires"] < time.time():
            self.sessions.pop(sid or "", None)
            raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs))
        request["user"] = user
        if request.method == "POST":
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")), user["csrf"]):
                raise web.HTTPForbidden(text="bad or missing CSRF token")
            request["form"] = form
        return await handler(request)

    # -- S3, as the logged-in user ---------------------------------------------------------
    async def _s3(self, request, method: str, bucket: str = "", key: str | None = None, query: str = "",
                  body: bytes = b"", headers: dict | None = None) -> tuple[int, dict, bytes]:
        user = request["user"]
        region = self.topo.region
        for _ in range(2):
            fe = self.topo.region_topology(region).frontend
            url = fe.url + "/" + quote(bucket, safe="") + ("/" + quote(key, safe="/~") if key else "")
            url += ("?" + query) if query else ""
            h = dict(headers or {})
            sha = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
            h.update(sign_request(method, url, h, sha, user["access_key"], user["secret_key"], region,
                                  dt.datetime.now(dt.timezone.utc)))
            async with self.s3.request(method, url, data=body or None, headers=h) as r:
                got = r.status, dict(r.headers), await r.read()
            # A bucket of another region (several regions): go where S3's redirect says, once.
            there = got[1].get("x-amz-bucket-region")
            if got[0] not in (301, 400) or not there or there == region or there not in self.topo.region_names:
                return got
            region = there
        return got

    @staticmethod
    def _xml(body: bytes):
        return ElementTree.fromstring(body)

    async def list_buckets(self, request) -> list[dict]:
        st, _, body = await self._s3(request, "GET")
        if st != 200:
            return []
        root = self._xml(body)
        return [{"name": b.findtext(f"{S3NS}Name"), "created": b.findtext(f"{S3NS}CreationDate")}
                for b in root.iter(f"{S3NS}Bucket")]

    async def list_objects(self, request, bucket: str, prefix: str, token: str) -> dict:
        # encoding-type=url: a key may hold characters XML 1.0 cannot carry
        # (a control character), so S3 sends keys and prefixes percent-encoded.
        q = [("delimiter", "/"), ("encoding-type", "url"), ("list-type", "2"), ("max-keys", "200")]
        if prefix:
            q.append(("prefix", prefix))
        if token:
            q.append(("continuation-token", token))
        query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(q))
        st, _, body = await self._s3(request, "GET", bucket, query=query)
        if st != 200:
            raise web.HTTPNotFound(text=f"cannot list {bucket}: HTTP {st}")
        root = self._xml(body)
        return {"objects": [{"key": unquote(c.findtext(f"{S3NS}Key") or ""),
                             "size": int(c.findtext(f"{S3NS}Size") or 0),
                             "modified": c.findtext(f"{S3NS}LastModified")} for c in root.iter(f"{S3NS}Contents")],
                "folders": [unquote(p.findtext(f"{S3NS}Prefix") or "") for p in root.iter(f"{S3NS}CommonPrefixes")],
                "next": root.findtext(f"{S3NS}NextContinuationToken")}

    def presigned(self, request, bucket: str, key: str, version_id: str | None = None) -> str:
        """A GET of the object (of one version of it, with ``version_id``), presigned for an hour."""
        user = request["user"]
        url = self.topo.frontend.url + "/" + quote(bucket, safe="") + "/" + quote(key, safe="/~")
        if version_id is not None:
            url += "?versionId=" + quote(version_id, safe="")
        return presign_url("GET", url, user["access_key"], user["secret_key"], self.topo.region,
                           dt.datetime.now(dt.timezone.utc), expires=3600)

    # -- pages -----------------------------------------------------------------------------
    async def health(self, request):
        return web.json_response({"ok": True, "role": "console"})

    def _login_page(self, request, nxt: str, error: str | None, status: int = 200) -> web.Response:
        """The login form, with a login CSRF token in the form and in a cookie
        (double submit: another site can make a browser post the form, but
        cannot read or set this site's cookie to match). The browser's token
        is kept while it has one: another page it loads meanwhile (a favicon,
        sent to the login page too) must not change it under the open form."""
        token = request.cookies.get(LOGIN_COOKIE, "")
        if len(token) < 32 or not token.replace("-", "").replace("_", "").isalnum():
            token = secrets.token_urlsafe(24)
        resp = self.render("login.html", request, next=nxt, error=error, login_csrf=token)
        resp.set_status(status)
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", max_age=3600,
                        secure=self.topo.console.tls)
        return resp

    async def login_form(self, request):
        return self._login_page(request, guard.safe_next(request.query.get("next")), None)

    async def login(self, request):
        form = await request.post()
        ak, sk = str(form.get("access_key", "")), str(form.get("secret_key", ""))
        nxt = guard.safe_next(str(form.get("next", "/")))
        addr = request.remote or "?"
        wait = self.throttle.retry_after(addr)
        if wait:
            resp = self._login_page(request, nxt, f"Too many failed logins from {addr}: try again in "
                                                  f"{wait:.0f} s.", status=429)
            resp.headers["Retry-After"] = str(int(wait) + 1)
            return resp
        token = request.cookies.get(LOGIN_COOKIE, "")
        if not token or not hmac.compare_digest(str(form.get("login_csrf", "")), token):
            return self._login_page(request, nxt, "The login form expired or came from another site: "
                                                  "log in again.", status=403)
        want = self.topo.credentials.get(ak)
        if want is None and ak:                      # a key of `minis3 user add` (meta/users.py)
            want = await users.secret_of(self.topo, self.internal, ak)
        if want is None or not hmac.compare_digest(want, sk):
            self.throttle.failed(addr)
            log.warning("console: failed login for %r from %s", ak[:64], addr)
            return self._login_page(request, nxt, "Wrong access key or secret key.", status=403)
        self.throttle.succeeded(addr)
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = {"access_key": ak, "secret_key": sk, "csrf": secrets.token_urlsafe(24),
                              "expires": time.time() + SESSION_S}
        resp = web.HTTPSeeOther(nxt)
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", max_age=SESSION_S,
                        secure=self.topo.console.tls)
        resp.del_cookie(LOGIN_COOKIE)
        raise resp

    async def logout(self, request):
        self.sessions.pop(request.cookies.get(COOKIE, ""), None)
        resp = web.HTTPSeeOther("/login")
        resp.del_cookie(COOKIE)
        raise resp

    async def _status_rows(self) -> list[dict]:
        return await asyncio.to_thread(status.collect, self.topo)

    def _az_states(self, rows: list[dict]) -> dict[str, str]:
        """Each AZ's state as a person would say it: up, down, frozen, degraded."""
        out = {}
        for az in self.topo.azs:
            mine = [r for r in rows if r["az"] == az.name]
            states = {r["state"] for r in mine}
            out[az.name] = ("up" if states == {"up"} else "frozen" if "frozen" in states and len(states) == 1
                            else "down" if not any(r["up"] for r in mine) else "degraded")
        return out

    async def overview(self, request):
        rows, buckets = await asyncio.gather(self._status_rows(), self.list_buckets(request))
        return self.render("overview.html", request, rows=rows, azs=self._az_states(rows), buckets=buckets,
                           message=request.query.get("message"))

    async def status_fragment(self, request):
        rows = await self._status_rows()
        return self.render("_status.html", request, rows=rows, azs=self._az_states(rows),
                           back=_back(request.query.get("back")))

    async def chaos_action(self, request):
        form = request["form"]
        action, az = str(form.get("action", "")), str(form.get("az", ""))
        if action not in CHAOS or az not in {a.name for a in self.topo.azs}:
            raise web.HTTPBadRequest(text="unknown action or AZ")
        try:
            msg = await asyncio.to_thread(CHAOS[action], self.topo, az)
        except chaos.ChaosError as exc:
            msg = f"{action} {az}: {exc}"
        log.info("chaos from the console (%s): %s", request["user"]["access_key"], msg)
        raise web.HTTPSeeOther(_back(form.get("back")) + "?message=" + quote(msg))

    async def bucket(self, request):
        bucket = request.match_info["bucket"]
        prefix, token = request.query.get("prefix", ""), request.query.get("token", "")
        listing = await self.list_objects(request, bucket, prefix, token)
        return self.render("bucket.html", request, bucket=bucket, prefix=prefix,
                           message=request.query.get("message"), **listing)

    async def create_bucket(self, request):
        name = str(request["form"].get("name", "")).strip()
        st, _, body = await self._s3(request, "PUT", name)
        if st != 200:
            raise web.HTTPSeeOther("/?message=" + quote(f"could not create {name}: HTTP {st}"))
        raise web.HTTPSeeOther("/b/" + quote(name, safe=""))

    async def upload(self, request):
        bucket = request.match_info["bucket"]
        form = request["form"]
        f = form.get("file")
        if not isinstance(f, web.FileField):
            raise web.HTTPBadRequest(text="no file")
        key = (str(form.get("prefix", "")) + (str(form.get("key", "")).strip() or f.filename)).lstrip("/")
        data = f.file.read()
        st, headers, body = await self._s3(request, "PUT", bucket, key, body=data,
                                           headers={"Content-Type": f.content_type or "binary/octet-stream"})
        if st != 200:
            raise web.HTTPBadRequest(text=f"upload failed: HTTP {st}: {body[:300]!r}")
        rid = headers.get("x-amz-request-id", "")
        raise web.HTTPSeeOther(f"/o/{quote(bucket, safe='')}/{quote(key, safe='/')}?trace={quote(rid)}")

    async def obj(self, request):
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        verify = request.query.get("verify") == "1"
        version_id = request.query.get("versionId") or None
        try:
            ins = await inspect_mod.inspect(self.topo, self.internal, bucket, key, verify=verify,
                                            version_id=version_id and versions.parse_id(version_id))
        except (E.NoSuchVersion, E.InvalidArgument, E.NoSuchBucket) as exc:
            raise web.HTTPNotFound(text=f"s3://{bucket}/{key}: {exc.code}: {exc}")
        if ins is None:
            raise web.HTTPNotFound(text=f"no object s3://{bucket}/{key}")
        d = ins.doc()
        downloads = {v["version_id"]: self.presigned(request, bucket, key, v["version_id"])
                     for v in d["versions"] if not v["delete_marker"]}
        spans = None
        if request.query.get("trace"):
            await asyncio.sleep(0.2)                     # the last replica's spans arrive just after the reply
            spans = await trace_mod.gather_spans(self.topo, request.query["trace"], self.internal)
        return self.render("object.html", request, bucket=bucket, key=key, d=d, verified=verify,
                           placements=list(zip(ins.location.placements, ins.checks)),
                           azs=[az.name for az in self.topo.azs],
                           download=None if d["delete_marker"] else self.presigned(request, bucket, key, version_id),
                           downloads=downloads, version_id=version_id, where_text=inspect_mod.where_text,
                           message=request.query.get("message"),
                           waterfall=_bars(spans) if spans else None, trace_id=request.query.get("trace"),
                           verdict=inspect_mod.verdict)

    async def object_action(self, request):
        """Remove one version of a key for good (a DELETE with its versionId, as the user)."""
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        form = request["form"]
        action, vid = str(form.get("action", "")), str(form.get("version_id", ""))
        if action != "delete-version" or not vid:
            raise web.HTTPBadRequest(text="unknown action, or no version id")
        st, _, body = await self._s3(request, "DELETE", bucket, key, query="versionId=" + quote(vid, safe=""))
        if st in (200, 204):
            msg = f"deleted version {vid} of {key} for good"
        else:
            msg = f"could not delete version {vid} of {key}: HTTP {st}: {body[:200].decode(errors='replace')}"
        log.info("from the console (%s): %s", request["user"]["access_key"], msg)
        if not await inspect_mod.versions_of(self.topo, self.internal, bucket, key):
            folder = key.rpartition("/")[0] + "/" if "/" in key else ""
            raise web.HTTPSeeOther(f"/b/{quote(bucket, safe='')}?prefix={quote(folder, safe='')}"
                                   f"&message={quote(msg)}")
        raise web.HTTPSeeOther(f"/o/{quote(bucket, safe='')}/{quote(key, safe='/')}?message={quote(msg)}")

    async def requests_page(self, request):
        recent = await trace_mod.recent(self.topo, 50, self.internal)
        return self.render("requests.html", request, recent=list(reversed(recent)))

    async def events(self, request):
        """Server-Sent Events: each request as it finishes (``request``)."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        seen = {r["trace_id"] for r in await trace_mod.recent(self.topo, 200, self.internal)}
        try:
            while True:
                await asyncio.sleep(0.5)
                for r in await trace_mod.recent(self.topo, 200, self.internal):
                    if r["trace_id"] in seen:
                        continue
                    seen.add(r["trace_id"])
                    a = r.get("attributes") or {}
                    ev = {"request_id": request_id_of(r["trace_id"]), "name": r["name"], "status": a.get("status"),
                          "code": a.get("code"), "ms": r["duration_ms"], "frontend": r["frontend"]}
                    await resp.write(f"event: request\ndata: {json.dumps(ev)}\n\n".encode())
        except ConnectionResetError:             # the page went away (a cancellation propagates)
            pass
        return resp

    async def live_page(self, request):
        rows = await self._status_rows()
        return self.render("live.html", request, rows=rows, azs=self._az_states(rows), back="/live",
                           operations=list(series.COMMON_OPERATIONS), az_names=[az.name for az in self.topo.azs],
                           message=request.query.get("message"), S=series)

    async def live_events(self, request):
        """Server-Sent Events for the live charts: the points kept so far
        (``history``), then one ``point`` a second while the page stays open."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q = self.live.watch()
        try:
            await resp.write(_sse("history", list(self.live.series.points)))
            while True:
                try:
                    pt = await asyncio.wait_for(q.get(), 15)
                except asyncio.TimeoutError:
                    await resp.write(b": still here\n\n")        # a comment keeps proxies from closing it
                    continue
                await resp.write(_sse("point", pt))
        except ConnectionResetError:             # the page went away (a cancellation propagates)
            pass
        finally:
            self.live.unwatch(q)
        return resp

    async def trace_page(self, request):
        rid = request.match_info["rid"]
        spans = await trace_mod.gather_spans(self.topo, rid, self.internal)
        root = next((s for s in spans if s.parent_span_id is None), None)
        return self.render("trace.html", request, rid=rid, bars=_bars(spans) if spans else [], root=root)

    async def partitions_page(self, request):
        data = await asyncio.to_thread(partitions.collect, self.topo)
        return self.render("partitions.html", request, data=data)

    async def scrubber_page(self, request):
        st = await asyncio.to_thread(status.signed_get, self.topo, self.topo.scrub.url, "/status", 3)
        return self.render("scrubber.html", request, st=st)


def _back(raw) -> str:
    """The page a chaos button returns to: the one it was pressed on (the live charts or the overview)."""
    return "/live" if raw == "/live" else "/"


def _sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _bars(spans) -> list[dict]:
    """A waterfall as rows for HTML: depth, name, process, offset and width (%)."""
    return [{"depth": b.depth, "name": b.span.name, "service": b.span.service, "ms": round(b.span.duration_ms, 2),
             "left": round(b.start * 100, 2), "width": max(0.4, round(b.length * 100, 2)),
             "status": b.span.status, "attrs": {k: v for k, v in b.span.attributes.items()
                                                if k in ("node", "az", "bytes", "status", "partition", "code", "peer")}}
            for b in layout(spans)[2]]


def make_app(topo: Topology) -> web.Application:
    c = Console(topo)
    app = web.Application(middlewares=[c.auth], client_max_size=256 << 20)
    listener.install(app)            # the request-head timeout and per-address cap, as every listener

    async def security_headers(request, response):
        response.headers.update(guard.SECURITY_HEADERS)
    app.on_response_prepare.append(security_headers)
    r = app.router
    r.add_routes([web.get("/health", c.health), web.get("/login", c.login_form), web.post("/login", c.login),
                  web.post("/logout", c.logout), web.get("/", c.overview), web.get("/status", c.status_fragment),
                  web.post("/chaos", c.chaos_action), web.post("/buckets", c.create_bucket),
                  web.get("/b/{bucket}", c.bucket), web.post("/b/{bucket}/upload", c.upload),
                  web.get("/b/{bucket}/access", lambda r: access_page.page(c, r)),
                  web.post("/b/{bucket}/access", lambda r: access_page.change(c, r)),
                  web.get("/o/{bucket}/{key:.+}", c.obj), web.post("/o/{bucket}/{key:.+}", c.object_action),
                  web.get("/requests", c.requests_page), web.get("/events", c.events),
                  web.get("/live", c.live_page), web.get("/live/events", c.live_events),
                  web.get("/trace/{rid}", c.trace_page), web.get("/partitions", c.partitions_page),
                  web.get("/scrubber", c.scrubber_page)])
    r.add_static("/static/", HERE / "static")
    app.on_startup.append(c.start)
    app.on_cleanup.append(c.stop)
    app["console"] = c
    return app


def main(argv: list[str] | None = None) -> None:
    _, topo = process_args("minis3 console", argv)
    begin("console", topo, log)
    log.info("web console on %s (frontend %s)", topo.console.url, topo.frontend.url)
    serve(make_app(topo), topo.console.host, topo.console.port,
          tls.server_context(topo) if topo.console.tls else None)
