"""S3 from a web page, in a real browser (Debian's Chromium driven by Playwright, as the console
test does): a page served from another origin uploads with a presigned POST form and with
fetch() PUT to a presigned URL, then reads the object back with fetch(). With no CORS rule
the browser blocks what the page may not read; with the rule it succeeds; a bucket policy
that does not allow the form's key prefix refuses the POST."""
from __future__ import annotations

import http.server
import json
import shutil
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from .s3helpers import remove_bucket
from .conftest import make_client

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs Debian's when root)")

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>uploader</title></head>
<body><h1>an app on another origin</h1>
<form id="upload" method="post" enctype="multipart/form-data"></form>
<script>
  // Build the presigned POST form: its fields, then the file input (S3 reads fields before the file).
  function makeForm(url, fields) {
    const f = document.getElementById("upload");
    f.action = url;
    f.innerHTML = "";
    for (const [k, v] of Object.entries(fields)) {
      const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
    }
    const file = document.createElement("input"); file.type = "file"; file.name = "file"; file.id = "file";
    f.appendChild(file);
    const go = document.createElement("button"); go.type = "submit"; go.id = "go"; go.textContent = "Upload";
    f.appendChild(go);
  }
  async function tryFetch(url, init) {
    try {
      const r = await fetch(url, init);
      return {ok: true, status: r.status, body: await r.text(), etag: r.headers.get("ETag")};
    } catch (e) {
      return {ok: false, error: String(e)};      // what a page sees when CORS blocks it
    }
  }
</script></body></html>"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGE                         # /index.html, and /done.html where a form upload lands
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def origin():
    """The app's own origin: another port than the S3 endpoint's, so another origin."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture()
def page(origin):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(origin + "/index.html")
        yield pg
        browser.close()


@pytest.fixture()
def app_bucket(cluster):
    s3 = make_client(cluster.endpoint, signature_version="s3v4")
    name = f"app-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    remove_bucket(s3, name)


def fetch(page, url, init=None):
    return page.evaluate("([url, init]) => tryFetch(url, init)", [url, init or {}])


def form_upload(page, form, tmp_path, name="photo.txt", data=b"from a form"):
    page.evaluate("([url, fields]) => makeForm(url, fields)", [form["url"], form["fields"]])
    f = tmp_path / name
    f.write_bytes(data)
    page.set_input_files("#file", str(f))
    with page.expect_navigation():
        page.click("#go")


def test_a_page_on_another_origin_uploads_and_reads_back_only_where_cors_allows(page, origin, app_bucket, tmp_path):
    s3, bucket = app_bucket
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello browser")
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hello.txt"}, ExpiresIn=600)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "fetched.txt"}, ExpiresIn=600)

    # No CORS rule: the browser blocks the page from reading, and a PUT never passes its preflight.
    blocked = fetch(page, get_url)
    assert blocked["ok"] is False and "Failed to fetch" in blocked["error"], blocked
    blocked = fetch(page, put_url, {"method": "PUT", "body": "from fetch", "headers": {"Content-Type": "text/plain"}})
    assert blocked["ok"] is False, blocked
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="fetched")

    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [origin], "AllowedMethods": ["GET", "PUT", "POST"], "AllowedHeaders": ["*"],
         "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})
    got = fetch(page, get_url)
    assert got == {"ok": True, "status": 200, "body": "hello browser", "etag": got["etag"]} and got["etag"], got

    put = fetch(page, put_url, {"method": "PUT", "body": "from fetch", "headers": {"Content-Type": "text/plain"}})
    assert put["ok"] and put["status"] == 200 and put["etag"], put
    read = fetch(page, s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "fetched.txt"}))
    assert read["body"] == "from fetch"

    # A presigned POST form, submitted by the browser; S3 redirects it back to the app.
    form = s3.generate_presigned_post(bucket, "uploads/${filename}",
                                      Fields={"success_action_redirect": origin + "/done.html"},
                                      Conditions=[["starts-with", "$success_action_redirect", origin]], ExpiresIn=600)
    form_upload(page, form, tmp_path, "photo.txt", b"from a form")
    landed = urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}" == origin and landed.path == "/done.html", page.url
    q = parse_qs(landed.query)
    assert q["bucket"] == [bucket] and q["key"] == ["uploads/photo.txt"] and q["etag"][0].startswith('"')
    read = fetch(page, s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "uploads/photo.txt"}))
    assert read["body"] == "from a form"


def test_a_policy_that_does_not_allow_the_prefix_refuses_the_post(page, origin, app_bucket, tmp_path):
    s3, bucket = app_bucket
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "OnlyUploads", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "NotResource": f"arn:aws:s3:::{bucket}/uploads/*"}]}))
    form = s3.generate_presigned_post(bucket, "elsewhere/${filename}", ExpiresIn=600)
    form_upload(page, form, tmp_path, "nope.txt", b"refused")
    assert "AccessDenied" in page.content()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    form = s3.generate_presigned_post(bucket, "uploads/${filename}", Fields={"success_action_status": "201"},
                                      Conditions=[{"success_action_status": "201"}], ExpiresIn=600)
    page.goto(origin + "/index.html")
    form_upload(page, form, tmp_path, "ok.txt", b"allowed")                # 201: the browser shows PostResponse
    assert "uploads/ok.txt" in page.content()
    assert s3.get_object(Bucket=bucket, Key="uploads/ok.txt")["Body"].read() == b"allowed"
