"""CORS rules (core/cors.py): the document, matching a preflight and an actual request, and
what the browser is told, as the S3 User Guide's "Configuring cross-origin resource sharing"
describes it."""
import pytest

from minis3.core import cors
from minis3.core import errors as E

DOC = b"""<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule><ID>app</ID><AllowedOrigin>https://app.example.com</AllowedOrigin>
    <AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedMethod>GET</AllowedMethod>
    <AllowedHeader>content-type</AllowedHeader><AllowedHeader>x-amz-*</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>
  <CORSRule><AllowedOrigin>https://*.example.org</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
  <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
</CORSConfiguration>"""
RULES = cors.parse_cors(DOC)


def test_the_document_round_trips():
    assert len(RULES) == 3 and RULES[0].id == "app" and RULES[0].max_age == 3000
    assert RULES[0].methods == ("PUT", "POST", "GET") and RULES[0].expose == ("ETag",)
    assert cors.parse_cors(cors.cors_xml(RULES)) == RULES
    assert cors.from_record(cors.to_record(RULES)) == RULES


@pytest.mark.parametrize("body,error", [
    (b"<CORSConfiguration/>", E.MalformedXML),
    (b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
     E.MalformedXML),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
     E.MalformedXML),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"
     b"</CORSRule></CORSConfiguration>", E.InvalidRequest),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>https://*.*.com</AllowedOrigin><AllowedMethod>GET"
     b"</AllowedMethod></CORSRule></CORSConfiguration>", E.InvalidRequest),
    (b"<CORSConfiguration>" + b"<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
     b"</CORSRule>" * 101 + b"</CORSConfiguration>", E.MalformedXML),
])
def test_bad_documents_are_refused(body, error):
    with pytest.raises(error):
        cors.parse_cors(body)


def pre(**h):
    return cors.preflight(RULES, {k.replace("_", "-"): v for k, v in h.items()})


def test_a_preflight_that_a_rule_allows():
    got = pre(origin="https://app.example.com", access_control_request_method="PUT",
              access_control_request_headers="Content-Type, X-Amz-Meta-Owner")
    assert got["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert got["Access-Control-Allow-Methods"] == "PUT, POST, GET"
    assert got["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-owner"
    assert got["Access-Control-Expose-Headers"] == "ETag" and got["Access-Control-Max-Age"] == "3000"
    assert got["Access-Control-Allow-Credentials"] == "true" and got["Vary"].startswith("Origin")


@pytest.mark.parametrize("h,error,message", [
    ({}, E.BadRequest, "Origin request header needed"),
    ({"origin": "https://app.example.com"}, E.BadRequest, "Access-Control-Request-Method: null"),
    ({"origin": "https://evil.example", "access_control_request_method": "GET"}, E.AccessForbidden, "not allowed"),
    ({"origin": "https://app.example.com", "access_control_request_method": "DELETE"}, E.AccessForbidden,
     "not allowed"),
    ({"origin": "https://app.example.com", "access_control_request_method": "PUT",
      "access_control_request_headers": "authorization"}, E.AccessForbidden, "not allowed"),
    ({"origin": "https://a.example.org", "access_control_request_method": "PUT"}, E.AccessForbidden, "not allowed"),
])
def test_preflights_refused(h, error, message):
    with pytest.raises(error) as e:
        pre(**h)
    assert message in e.value.message


def test_no_configuration_is_its_own_refusal():
    with pytest.raises(E.AccessForbidden) as e:
        cors.preflight(None, {"origin": "https://x", "access-control-request-method": "GET"})
    assert "CORS is not enabled" in e.value.message


def test_wildcards_in_origins_and_the_first_matching_rule_decides():
    got = pre(origin="https://docs.example.org", access_control_request_method="GET")
    assert got["Access-Control-Allow-Origin"] == "https://docs.example.org" and "Access-Control-Max-Age" not in got
    star = pre(origin="https://anywhere.test", access_control_request_method="HEAD")
    assert star["Access-Control-Allow-Origin"] == "*" and "Access-Control-Allow-Credentials" not in star


def test_actual_requests():
    assert cors.actual(RULES, "https://app.example.com", "GET")["Access-Control-Allow-Origin"] == \
        "https://app.example.com"
    assert cors.actual(RULES, "https://evil.example", "GET") == {"Vary": cors.VARY}
    assert cors.actual(RULES, None, "GET") == {} and cors.actual(None, "https://app.example.com", "GET") == {}
