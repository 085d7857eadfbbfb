"""The console's page of a bucket's access settings (``/b/BUCKET/access``): its policy, CORS
rules, Block Public Access, Object Ownership and ACL, read and changed through the S3 API with
the logged-in user's credentials, so the page can do exactly what that user may (the bucket
policy decides it, as for any client: docs/access.md). Each change shows S3's answer, its
error message included (a MalformedPolicy says what is wrong with the document)."""
from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from aiohttp import web
from defusedxml import ElementTree

S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
READS = (("policy", "policy"), ("status", "policyStatus"), ("cors", "cors"), ("block", "publicAccessBlock"),
         ("ownership", "ownershipControls"), ("acl", "acl"))
BLOCK = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
OWNERSHIP = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")
CANNED = ("private", "public-read", "public-read-write", "authenticated-read")


def _error(status: int, body: bytes) -> str:
    try:
        root = ElementTree.fromstring(body)
        return f"{root.findtext('Code')}: {root.findtext('Message')}"
    except Exception:                 # not S3's XML error
        return f"HTTP {status}"


def _grantee(grant) -> str:
    """A grantee as a person reads it: an account's name (or id), or a group's name."""
    uri = grant.findtext(f"{S3NS}Grantee/{S3NS}URI")
    return (grant.findtext(f"{S3NS}Grantee/{S3NS}DisplayName") or grant.findtext(f"{S3NS}Grantee/{S3NS}ID")
            or (uri or "?").rsplit("/", 1)[-1])


def _settings(got: dict) -> dict:
    out: dict = {}
    st, body = got["policy"]
    if st == 200:
        try:
            out["policy"] = json.dumps(json.loads(body), indent=2)
        except ValueError:
            out["policy"] = body.decode("utf-8", "replace")
        out["public"] = got["status"][0] == 200 and b"<IsPublic>true</IsPublic>" in got["status"][1]
    elif st != 404:
        out["policy_error"] = _error(st, body)
    st, body = got["cors"]
    out["cors"] = body.decode("utf-8", "replace") if st == 200 else ""
    st, body = got["block"]
    if st == 200:
        root = ElementTree.fromstring(body)
        out["block"] = {k: root.findtext(f"{S3NS}{k}") == "true" for k in BLOCK}
    else:
        out["block"] = None if st == 404 else {}
    st, body = got["ownership"]
    out["ownership"] = (ElementTree.fromstring(body).findtext(f".//{S3NS}ObjectOwnership") if st == 200
                        else "none set (ObjectWriter)" if st == 404 else _error(st, body))
    st, body = got["acl"]
    out["grants"] = [(_grantee(g), g.findtext(f"{S3NS}Permission"))
                     for g in ElementTree.fromstring(body).iter(f"{S3NS}Grant")] if st == 200 else []
    return out


async def page(console, request: web.Request) -> web.Response:
    bucket = request.match_info["bucket"]
    answers = await asyncio.gather(*(console._s3(request, "GET", bucket, query=query) for _, query in READS))
    got = {name: (st, body) for (name, _), (st, _, body) in zip(READS, answers)}
    if got["acl"][0] in (403, 404) and got["block"][0] in (403, 404) and got["policy"][0] in (403, 404):
        raise web.HTTPNotFound(text=f"{bucket}: {_error(*got['acl'])}")
    return console.render("access.html", request, bucket=bucket, message=request.query.get("message"),
                          block_names=BLOCK, ownerships=OWNERSHIP, canned=CANNED, **_settings(got))


def _ownership_xml(setting: str) -> bytes:
    return (f'<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ObjectOwnership>{setting}'
            "</ObjectOwnership></Rule></OwnershipControls>").encode()


def _block_xml(form) -> bytes:
    flags = "".join(f"<{k}>{'true' if form.get(k) else 'false'}</{k}>" for k in BLOCK)
    return (f'<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{flags}'
            "</PublicAccessBlockConfiguration>").encode()


async def change(console, request: web.Request) -> web.Response:
    """Save one setting (``what``: policy, cors, block, ownership or a canned ``acl``); an
    empty policy or CORS deletes it."""
    bucket, form = request.match_info["bucket"], request["form"]
    what = str(form.get("what", ""))
    if what == "policy":
        text = str(form.get("policy", "")).strip()
        call = ("PUT", "policy", text.encode()) if text else ("DELETE", "policy", b"")
    elif what == "cors":
        text = str(form.get("cors", "")).strip()
        call = ("PUT", "cors", text.encode()) if text else ("DELETE", "cors", b"")
    elif what == "block":
        call = ("PUT", "publicAccessBlock", _block_xml(form)) if form.get("set") else ("DELETE", "publicAccessBlock", b"")
    elif what == "ownership" and str(form.get("ownership")) in OWNERSHIP:
        call = ("PUT", "ownershipControls", _ownership_xml(str(form["ownership"])))
    elif what == "acl" and str(form.get("acl")) in CANNED:
        call = ("PUT", "acl", b"")
    else:
        raise web.HTTPBadRequest(text="unknown setting")
    method, query, body = call
    headers = {"x-amz-acl": str(form["acl"])} if what == "acl" else None
    st, headers, answer = await console._s3(request, method, bucket, query=query, body=body, headers=headers)
    rid = headers.get("x-amz-request-id", "")
    verb = "saved" if method == "PUT" else "removed"
    msg = (f"{what} {verb} (request {rid})" if st in (200, 204)
           else f"{what} not {verb}: {_error(st, answer)} (request {rid})")
    raise web.HTTPSeeOther(f"/b/{quote(bucket, safe='')}/access?message={quote(msg)}")
