"""The web console in a real headless browser (Chromium from Debian, driven by Playwright).

Log in, browse to an object and see its placement, upload a file and see its
fragments land, press "Kill AZ" and see the AZ down while the object still
downloads, watch the live request feed, revive the AZ; list an object's
versions, download an old one and delete one; watch the live charts while a
workload runs and an AZ is killed and revived. Screenshots of the
pages go to a temporary directory, or to docs/console/ with
MINIS3_SCREENSHOTS=docs/console.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import pytest

from .cluster import ACCESS_KEY, SECRET_KEY, started_cluster

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs Debian's when root)")


@pytest.fixture(scope="module")
def cc(tmp_path_factory):
    yield from started_cluster(tmp_path_factory, "console", console=True)


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (a launch takes most of a second); each test gets a context of its own."""
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(cc, browser):
    """A page in a new browser context: no cookie, storage or cache of another test's."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def shot(page, name: str, tmp_path: Path) -> None:
    out = Path(os.environ.get("MINIS3_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_log_in_browse_upload_kill_an_az_download_and_revive(cc, page, tmp_path):
    console = cc.topo.console.url
    s3 = boto3.client("s3", endpoint_url=cc.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="console-demo")
    data = os.urandom((2 << 20) + 777)
    s3.put_object(Bucket="console-demo", Key="photos/cat.bin", Body=data, Tagging="animal=cat&size=large")

    # Not logged in: the login form, which refuses a wrong secret.
    page.goto(console + "/b/console-demo")
    assert page.url.startswith(console + "/login")
    page.fill("input[name=access_key]", ACCESS_KEY)
    page.fill("input[name=secret_key]", "wrong")
    page.click("button[type=submit]")
    assert "Wrong access key or secret key" in page.content()
    shot(page, "login", tmp_path)
    page.fill("input[name=access_key]", ACCESS_KEY)
    page.fill("input[name=secret_key]", SECRET_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(console + "/b/console-demo")

    # Browse to the object: its placement, one column per AZ.
    page.click("text=photos/")
    page.click("text=photos/cat.bin")
    page.wait_for_selector("[data-testid=placement]")
    assert page.locator("[data-testid=placement] th").all_inner_texts() == ["az-a", "az-b", "az-c"]
    assert page.locator("[data-testid=placement] .frag").count() == 6
    assert "full redundancy" in page.inner_text("[data-testid=verdict]")
    assert page.inner_text("[data-testid=tags]") == "animal = cat, size = large"
    # A bucket that never kept versions: the key's one version, null.
    assert page.locator("[data-testid=version]").count() == 1
    assert page.get_attribute("[data-testid=version]", "data-version-id") == "null"
    shot(page, "object", tmp_path)

    # Upload through the console: where the fragments landed, and the PUT's waterfall.
    page.goto(console + "/b/console-demo")
    page.set_input_files("input[type=file]", files=[{"name": "upload.bin", "mimeType": "application/octet-stream",
                                                      "buffer": os.urandom(1_500_000)}])
    page.click("form.upload button")
    page.wait_for_selector("table.waterfall")
    assert "/o/console-demo/upload.bin" in page.url
    assert page.locator("[data-testid=placement] .frag").count() == 6
    assert page.locator("table.waterfall td.name", has_text="write fragment").count() == 6
    shot(page, "upload", tmp_path)

    # Kill an AZ from the overview (after a confirmation): it shows down, and the object still downloads.
    page.goto(console + "/")
    page.on("dialog", lambda d: d.accept())
    page.click("[data-testid=kill-az-b]")
    page.wait_for_url(console + "/?message=*")
    # (Locator assertions, not wait_for_function: the console's CSP forbids eval, as it should.)
    expect(page.locator("[data-testid=az-state-az-b]")).to_have_text("down")
    shot(page, "cluster-az-down", tmp_path)
    page.goto(console + "/o/console-demo/photos/cat.bin")
    assert "node down" in page.inner_text("[data-testid=placement]")
    href = page.get_attribute("[data-testid=download]", "href")
    with urllib.request.urlopen(href, timeout=30) as r:         # the presigned link, as the browser follows it
        assert r.read() == data
    shot(page, "object-az-down", tmp_path)

    # The live feed shows requests as they finish.
    page.goto(console + "/requests")
    rows = page.locator("#feed tr").count()
    s3.head_object(Bucket="console-demo", Key="photos/cat.bin")
    expect(page.locator(f"#feed tr >> nth={rows}")).to_be_attached()
    shot(page, "requests", tmp_path)
    page.click("#feed tr:nth-child(2) a")
    page.wait_for_selector("table.waterfall")

    for name in ("partitions", "scrubber"):
        page.goto(console + "/" + name)
        shot(page, name, tmp_path)

    # Revive the AZ.
    page.goto(console + "/")
    page.click("[data-testid=revive-az-b]")
    page.wait_for_url(console + "/?message=*", timeout=60_000)
    expect(page.locator("[data-testid=az-state-az-b]")).to_have_text("up", timeout=60_000)
    shot(page, "cluster", tmp_path)


def log_in(page, console: str, path: str) -> None:
    page.goto(console + path)
    page.fill("input[name=access_key]", ACCESS_KEY)
    page.fill("input[name=secret_key]", SECRET_KEY)
    page.click("button[type=submit]")
    page.wait_for_url(console + path)


def test_an_objects_versions_listed_one_downloaded_and_one_deleted(cc, page, tmp_path):
    console = cc.topo.console.url
    s3 = boto3.client("s3", endpoint_url=cc.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="console-versions")
    s3.put_bucket_versioning(Bucket="console-versions", VersioningConfiguration={"Status": "Enabled"})
    first = os.urandom((1 << 20) + 99)                   # erasure-coded
    v1 = s3.put_object(Bucket="console-versions", Key="docs/report.bin", Body=first)["VersionId"]
    v2 = s3.put_object(Bucket="console-versions", Key="docs/report.bin", Body=b"second")["VersionId"]
    v3 = s3.put_object(Bucket="console-versions", Key="docs/report.bin", Body=b"third")["VersionId"]
    path = "/o/console-versions/docs/report.bin"
    log_in(page, console, path)

    def listed() -> list[tuple[str, bool, str]]:
        rows = page.locator("[data-testid=version]")
        return [(rows.nth(i).get_attribute("data-version-id"), rows.nth(i).locator("[data-testid=latest]").count() == 1,
                 rows.nth(i).locator("[data-testid=kind]").inner_text()) for i in range(rows.count())]

    assert listed() == [(v3, True, "object"), (v2, False, "object"), (v1, False, "object")]
    assert "az-a: " in page.inner_text(f"[data-version-id='{v1}']")          # where the old one's fragments are
    shot(page, "object-versions", tmp_path)

    # Download the oldest version: the link GETs it with its versionId.
    href = page.get_attribute(f"[data-version-id='{v1}'] [data-testid=download-version]", "href")
    assert "versionId=" + v1 in href
    with urllib.request.urlopen(href, timeout=30) as r:
        assert r.read() == first

    # Delete the middle one for good (after a confirmation): it leaves the list, and S3.
    page.on("dialog", lambda d: d.accept())
    page.click(f"[data-version-id='{v2}'] [data-testid=delete-version]")
    page.wait_for_url(console + path + "?message=**")
    assert "deleted version " + v2 in page.inner_text("[role=status]")
    assert listed() == [(v3, True, "object"), (v1, False, "object")]
    vs = s3.list_object_versions(Bucket="console-versions", Prefix="docs/report.bin")["Versions"]
    assert [v["VersionId"] for v in vs] == [v3, v1]

    # A delete marker made current: the page still shows the key, and says so; an old version in full.
    m = s3.delete_object(Bucket="console-versions", Key="docs/report.bin")["VersionId"]
    page.goto(console + path)
    assert "delete marker" in page.inner_text("[data-testid=delete-marker]")
    assert page.locator("[data-testid=download]").count() == 0
    assert listed() == [(m, True, "delete marker"), (v3, False, "object"), (v1, False, "object")]
    page.click(f"[data-version-id='{v1}'] [data-testid=version-link]")
    page.wait_for_selector("[data-testid=placement]")
    assert page.inner_text("[data-testid=version-id]") == f"{v1} (not the latest)"
    with urllib.request.urlopen(page.get_attribute("[data-testid=download]", "href"), timeout=30) as r:
        assert r.read() == first


def test_a_buckets_policy_cors_and_block_public_access_seen_and_edited(cc, page, tmp_path):
    """/b/BUCKET/access: the page shows what the S3 API says and changes it as the user, with
    S3's own error for a bad document."""
    from minis3.core.access import account_id
    from .cluster import SECOND_ACCESS_KEY
    s3 = boto3.client("s3", endpoint_url=cc.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="console-access")
    console = cc.topo.console.url
    log_in(page, console, "/b/console-access")
    page.click("[data-testid=access-link]")
    page.wait_for_url(console + "/b/console-access/access")
    assert page.locator("[data-testid=ownership]").inner_text() == "BucketOwnerEnforced"
    assert "FULL_CONTROL" in page.locator("[data-testid=acl]").inner_text()
    assert page.locator("[data-testid=block] input[type=checkbox]:checked").count() == 4

    page.fill("[data-testid=policy]", '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}')
    page.click("text=Save the policy")
    expect(page.locator("[data-testid=message]")).to_contain_text("MalformedPolicy")
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "Partner", "Effect": "Allow",
              "Principal": {"AWS": account_id(SECOND_ACCESS_KEY)}, "Action": "s3:GetObject",
              "Resource": "arn:aws:s3:::console-access/shared/*"}]}
    page.fill("[data-testid=policy]", json.dumps(policy))
    page.click("text=Save the policy")
    expect(page.locator("[data-testid=message]")).to_contain_text("policy saved")
    assert page.locator("[data-testid=policy-public]").inner_text() == "not public"
    assert json.loads(s3.get_bucket_policy(Bucket="console-access")["Policy"]) == policy

    # Block Public Access off, then a public policy is taken (and shown as public).
    for box in page.locator("[data-testid=block] input[type=checkbox]").all():
        box.uncheck()
    page.click("[data-testid=block] button")
    expect(page.locator("[data-testid=message]")).to_contain_text("block saved")
    policy["Statement"][0]["Principal"] = "*"
    page.fill("[data-testid=policy]", json.dumps(policy))
    page.click("text=Save the policy")
    expect(page.locator("[data-testid=policy-public]")).to_have_text("public")

    page.fill("[data-testid=cors]", "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin>"
                                    "<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>")
    page.click("text=Save the CORS rules")
    expect(page.locator("[data-testid=message]")).to_contain_text("cors saved")
    assert s3.get_bucket_cors(Bucket="console-access")["CORSRules"][0]["AllowedOrigins"] == ["https://app.example"]
    # ACLs: refused while disabled (S3's own error shown), taken once ownership lets them count.
    page.select_option("[data-testid=acl-form] select", "public-read")
    page.click("[data-testid=acl-form] button")
    expect(page.locator("[data-testid=message]")).to_contain_text("AccessControlListNotSupported")
    page.select_option("[data-testid=ownership-form] select", "ObjectWriter")
    page.click("[data-testid=ownership-form] button")
    expect(page.locator("[data-testid=ownership]")).to_have_text("ObjectWriter")
    page.select_option("[data-testid=acl-form] select", "public-read")
    page.click("[data-testid=acl-form] button")
    expect(page.locator("[data-testid=message]")).to_contain_text("acl saved")
    assert "AllUsers: READ" in page.locator("[data-testid=acl]").inner_text()
    shot(page, "access", tmp_path)
    page.fill("[data-testid=policy]", "")
    page.click("text=Save the policy")
    expect(page.locator("[data-testid=message]")).to_contain_text("policy removed")
    s3.delete_bucket_cors(Bucket="console-access")
    s3.delete_bucket(Bucket="console-access")


def test_a_key_added_with_minis3_user_add_logs_in(cc, page):
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "minis3", "user", "add", "--account", "console-team", "--json",
                        "--topology", str(cc.topo_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    key = json.loads(p.stdout)
    console = cc.topo.console.url
    page.goto(console + "/")
    page.fill("input[name=access_key]", key["access_key"])
    page.fill("input[name=secret_key]", key["secret_key"])
    page.click("button[type=submit]")
    page.wait_for_url(console + "/")
    assert "Wrong access key" not in page.content()


def _chart(page, name: str) -> tuple[int, float, dict]:
    """A live chart's figure: how many points it draws, the last one's time and values (live.js sets them)."""
    fig = page.locator(f"[data-testid=chart-{name}]")
    points = fig.get_attribute("data-points")
    if points is None:
        return 0, 0.0, {}
    return int(points), float(fig.get_attribute("data-t")), json.loads(fig.get_attribute("data-last"))


def _until(page, name: str, what: str, ok, timeout: float = 60) -> tuple[int, float, dict]:
    """Poll a chart until ``ok(points, t, last)``; fail saying ``what`` was not seen."""
    deadline = time.monotonic() + timeout
    got = _chart(page, name)
    while not ok(*got):
        if time.monotonic() > deadline:
            raise AssertionError(f"chart {name}: {what} not seen in {timeout:.0f} s; last {got}")
        page.wait_for_timeout(250)
        got = _chart(page, name)
    return got


def test_live_charts_render_and_update_while_an_az_is_killed_and_revived(cc, page, tmp_path):
    """The live page in Chromium: its five charts draw (uPlot canvases, served
    by the console under its CSP), follow a PUT/GET workload each second, go
    on while az-b is killed from the page's own button (fragments on its
    nodes and the handed-off ones rise as PUTs land, and a scrubber pass
    counts the objects not full), and after the revive the scrubber moves the
    handed-off fragments home. The request charts' lines are S3 operations."""
    console = cc.topo.console.url
    s3 = boto3.client("s3", endpoint_url=cc.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="console-live")
    problems: list[str] = []
    # (A browser asks for /favicon.ico on its own: the console has none, a 404 that is no problem.)
    page.on("console", lambda m: m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            and problems.append(f"{m.text} ({m.location.get('url')})"))
    page.on("pageerror", lambda e: problems.append(str(e)))
    stop, acked = threading.Event(), []

    def workload():
        body, i = os.urandom(200_000), 0            # erasure-coded (over the inline threshold)
        while not stop.is_set():
            key = f"w/{i:05d}"
            try:
                s3.put_object(Bucket="console-live", Key=key, Body=body)
                acked.append(key)
                assert s3.get_object(Bucket="console-live", Key=key)["Body"].read() == body
                s3.head_object(Bucket="console-live", Key=key)
            except Exception:        # noqa: BLE001 - a PUT refused while the kill lands is retried by the next
                pass
            i += 1
            stop.wait(0.2)

    log_in(page, console, "/live")
    expect(page.locator(".charts .uplot canvas")).to_have_count(5)
    worker = threading.Thread(target=workload, daemon=True)
    worker.start()
    try:
        # The charts follow the workload: its S3 operations per second, their latency, bytes into every AZ.
        _, _, rate = _until(page, "rate", "PutObject, GetObject and HeadObject",
                            lambda n, t, v: all(v.get(op, 0) > 0 for op in ("PutObject", "GetObject", "HeadObject")))
        assert not {"PUT", "GET", "HEAD"} & set(rate), rate          # operations, not HTTP methods
        _until(page, "latency", "a PutObject and a GetObject p99",
               lambda n, t, v: (v.get("PutObject p99") or 0) > 0 and (v.get("GetObject p99") or 0) > 0)
        _until(page, "bytes", "bytes into each AZ",
               lambda n, t, v: all((v.get(f"{az} in") or 0) > 0 for az in ("az-a", "az-b", "az-c")))
        n0, t0, _ = _chart(page, "rate")
        _until(page, "rate", "new points", lambda n, t, v: n >= max(n0 + 1, 10) and t >= t0 + 2)
        _, _, red = _chart(page, "redundancy")
        assert red["on_down_nodes"] == 0
        handed_before = red["handed_off"]
        assert handed_before is not None

        # Kill az-b from the page (after a confirmation): back on the live page, the charts go on.
        page.on("dialog", lambda d: d.accept())
        page.click("[data-testid=kill-az-b]")
        page.wait_for_url(console + "/live?message=*")
        expect(page.locator("[data-testid=az-state-az-b]")).to_have_text("down")
        expect(page.locator(".charts .uplot canvas")).to_have_count(5)
        killed_at = len(acked)
        # Its nodes' fragments are unreachable, and every PUT now hands two fragments to other AZs.
        _until(page, "redundancy", "fragments on down nodes", lambda n, t, v: v["on_down_nodes"] > 0)
        _, _, red = _until(page, "redundancy", "handed-off fragments rising as PUTs land",
                           lambda n, t, v: v["handed_off"] is not None and v["handed_off"] >= handed_before + 6)
        # (The handoffs above may include PUTs still in flight: wait for three acknowledged since the kill.)
        deadline = time.monotonic() + 30
        while len(acked) < killed_at + 3 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert len(acked) >= killed_at + 3, (len(acked), killed_at)
        _until(page, "bytes", "nothing into az-b", lambda n, t, v: v["az-b in"] == 0 and (v["az-a in"] or 0) > 0)
        _, t2, _ = _chart(page, "rate")
        _until(page, "rate", "PUTs going on with az-b down", lambda n, t, v: t > t2 + 2 and v["PutObject"] > 0)
        # A scrubber pass now counts the objects short of a fragment (their az-b one), as its line then shows.
        assert cc.scrub_now("--no-audit")["pass"]["not_full"] > 0
        _until(page, "redundancy", "the scrubber's count of objects not full",
               lambda n, t, v: (v["not_full_objects"] or 0) > 0)
        expect(page.locator("#status")).to_contain_text("not full")     # the status panel's scrubber row too
        shot(page, "live-az-down", tmp_path)

        # Revive it: nothing is unreachable any more, and the scrubber moves the handed-off fragments home.
        peak = _chart(page, "redundancy")[2]["handed_off"]
        page.click("[data-testid=revive-az-b]")
        page.wait_for_url(console + "/live?message=*", timeout=60_000)
        expect(page.locator("[data-testid=az-state-az-b]")).to_have_text("up", timeout=60_000)
        _until(page, "redundancy", "fragments moved home", timeout=120,
               ok=lambda n, t, v: v["on_down_nodes"] == 0 and v["handed_off"] is not None
               and v["handed_off"] <= peak - 6)
        _until(page, "bytes", "bytes into az-b again", lambda n, t, v: (v["az-b in"] or 0) > 0)
        shot(page, "live", tmp_path)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not problems, problems         # no script error, nothing the CSP refused


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def _browser(follow: bool = True):
    """A cookie-keeping HTTP client (no JavaScript, like a script or another site's form)."""
    import http.cookiejar
    jar = http.cookiejar.CookieJar()
    handlers = [urllib.request.HTTPCookieProcessor(jar)] + ([] if follow else [_NoRedirect()])
    return urllib.request.build_opener(*handlers), jar


def _login_form(cc, opener, next_: str = "/") -> tuple[str, str]:
    """GET the login form: its hidden next and login CSRF token."""
    import re
    html = opener.open(cc.topo.console.url + "/login?" + urllib.parse.urlencode({"next": next_}),
                       timeout=30).read().decode()
    nxt = re.search(r'name="next" value="([^"]*)"', html).group(1)
    return nxt, re.search(r'name="login_csrf" value="([^"]+)"', html).group(1)


def _post_login(cc, opener, fields: dict):
    return opener.open(cc.topo.console.url + "/login", urllib.parse.urlencode(fields).encode(), timeout=30)


def test_a_post_without_the_csrf_token_is_refused(cc):
    opener, jar = _browser()
    _, token = _login_form(cc, opener)
    _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "next": "/", "login_csrf": token})
    assert any(c.name == "minis3_console" for c in jar)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(cc.topo.console.url + "/chaos", urllib.parse.urlencode({"action": "kill", "az": "az-a"}).encode(),
                    timeout=30)
    assert e.value.code == 403


def test_a_login_without_its_form_token_is_refused(cc):
    """Login CSRF: another site's form can post the right fields, but not the
    token that matches this browser's login cookie."""
    opener, jar = _browser()
    with pytest.raises(urllib.error.HTTPError) as e:
        _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "next": "/"})
    assert e.value.code == 403 and not any(c.name == "minis3_console" for c in jar)
    _, token = _login_form(cc, opener)
    with pytest.raises(urllib.error.HTTPError) as e:
        _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "next": "/",
                                 "login_csrf": token[::-1]})
    assert e.value.code == 403


@pytest.mark.parametrize("evil", ["/%09/evil.example/", "/\t/evil.example/", "//evil.example/",
                                  "https://evil.example/", "/%5cevil.example"])
def test_the_login_never_sends_the_browser_to_another_site(cc, evil):
    opener, _ = _browser(follow=False)
    nxt, token = _login_form(cc, opener, evil)
    assert nxt == "/"                                     # the form never carries it
    with pytest.raises(urllib.error.HTTPError) as e:    # and a forged post is not followed either
        _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "next": evil,
                                 "login_csrf": token})
    assert e.value.code == 303 and e.value.headers["Location"] == "/"


def test_pages_forbid_framing_and_foreign_scripts_and_list_any_key(cc):
    s3 = boto3.client("s3", endpoint_url=cc.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="console-odd-keys")
    s3.put_object(Bucket="console-odd-keys", Key="bell\x07and\x01start", Body=b"x")
    s3.put_object(Bucket="console-odd-keys", Key="dir\x02/inner", Body=b"y")
    opener, _ = _browser()
    nxt, token = _login_form(cc, opener, "/b/console-odd-keys")
    with _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "next": nxt,
                                  "login_csrf": token}) as r:
        html = r.read().decode()
        assert r.status == 200 and r.url.endswith("/b/console-odd-keys")
        assert r.headers["X-Frame-Options"] == "DENY"
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    # Keys XML 1.0 cannot carry are listed (the console asks for encoding-type=url).
    assert "bell\x07and\x01start" in html and "dir\x02/" in html


def test_failed_logins_are_throttled_per_address(cc):
    """Last in this module: it locks 127.0.0.1 out of logging in for 5 minutes."""
    opener, _ = _browser()
    for _ in range(5):
        _, token = _login_form(cc, opener)
        with pytest.raises(urllib.error.HTTPError) as e:
            _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": "wrong", "login_csrf": token})
        assert e.value.code == 403
    _, token = _login_form(cc, opener)
    with pytest.raises(urllib.error.HTTPError) as e:     # even with the right secret, for now
        _post_login(cc, opener, {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "login_csrf": token})
    assert e.value.code == 429 and int(e.value.headers["Retry-After"]) > 200
    assert "Too many failed logins" in e.value.read().decode()

