"""How minis3 writes and reads S3's XML (namespace ``http://s3.amazonaws.com/doc/2006-03-01/``):
the element builder, escaping, ``encoding-type=url``, dates and ETags, and safe parsing.
The documents themselves are in ``core/s3xml.py`` (errors, buckets, listings, versioning),
``core/multipart_xml.py``, ``core/tagging.py`` and ``core/attributes.py``.

Documents are written as UTF-8 after an S3-style declaration
``<?xml version="1.0" encoding="UTF-8"?>``, by a small builder (:class:`El`: ElementTree's
serializer is too slow for a 1,000-key listing). Empty elements are written
``<Prefix></Prefix>``, as S3 writes them.

Characters XML 1.0 cannot carry. Keys may hold any Unicode, including
control characters such as U+0001. S3 returns them anyway, as numeric
character references (``&#x1;``), which strict XML parsers reject -- the reason
``encoding-type=url`` exists, and why boto3 asks for it on every listing. We do
the same: every character outside XML 1.0's ``Char`` production (C0 controls
other than TAB/LF/CR, U+FFFE, U+FFFF, lone surrogates) is written as
``&#xN;``. CR is written ``&#xD;`` too, which is legal XML and keeps a parser
from normalizing it to LF. Everything else is written as itself (``&``, ``<``
and ``>`` escaped).

``encoding-type=url``. S3 then URL-encodes ``Key``, ``Prefix``, ``Delimiter``,
``Marker``, ``NextMarker``, ``StartAfter`` and ``CommonPrefixes/Prefix``
(continuation tokens are opaque and left alone). The encoding is the percent-
encoding S3 uses: UTF-8 bytes, ``%XX`` for everything but letters, digits,
``-``, ``_``, ``.``, ``/`` and ``*``; a space is ``%20`` and a literal ``+``
is ``%2B`` (so a decoder that reads ``+`` as a space and one that does not
both get the key back), and ``~`` is ``%7E``. botocore decodes these
elements with ``unquote_plus`` (``handlers.decode_list_object*``) when it
set the encoding itself, so every key round-trips through boto3. Note: botocore decodes
``Prefix`` for ListObjectsV2 but not for ListObjects (V1); S3 encodes it in
both, and so do we.

Parsing of client-supplied XML goes only through :mod:`defusedxml` with DTDs
forbidden; anything malformed, oversized or of the wrong shape is
E.MalformedXML.
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import defusedxml.ElementTree as DET

from minis3.core import errors as E
from minis3.core.checksums import ELEMENT_NAMES
from minis3.core.numbers import parse_int

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_URL_SAFE = re.compile(r"[A-Za-z0-9_.\-/*]*")
_PLAIN_TEXT = re.compile(r"[^&<>\x00-\x1f\ud800-\udfff\ufffe\uffff]*")
_NON_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ---------------------------------------------------------------- helpers

@functools.lru_cache(maxsize=4096)
def iso_seconds(sec: int) -> str:
    return (_EPOCH + _dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")


def iso8601_ms(ms: int) -> str:
    """Epoch milliseconds -> ``2009-10-12T17:50:30.000Z``. (A listing formats
    a thousand of these; objects written together share their second.)"""
    sec, frac = divmod(ms, 1000)
    return f"{iso_seconds(sec)}.{frac:03d}Z"


def url_encode(value: str) -> str:
    """S3's ``encoding-type=url`` form of a key/prefix/delimiter (module doc)."""
    if _URL_SAFE.fullmatch(value):         # the common key needs no encoding (and quote is slow)
        return value
    try:
        encoded = quote(value, safe="/*", encoding="utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        encoded = quote(value, safe="/*", encoding="utf-8", errors="surrogatepass")
    return encoded.replace("~", "%7E")


def quote_etag(etag: str) -> str:
    """``abc`` -> ``"abc"``; an already quoted ETag is left as is."""
    if len(etag) >= 2 and etag[0] == '"' and etag[-1] == '"':
        return etag
    return f'"{etag}"'


def _char_ref(m: re.Match[str]) -> str:
    return f"&#x{ord(m.group()):X};"


class El:
    """An element of a document we write. ElementTree's own serializer
    costs ~40 µs an element in CPython, too slow for a 1,000-key listing
    (measured: 70 ms of frontend CPU a page); these write the same bytes."""

    __slots__ = ("tag", "namespace", "text", "children")

    def __init__(self, tag: str, namespace: bool = False) -> None:
        self.tag, self.namespace = tag, namespace
        self.text: str | None = None
        self.children: list[El | Raw] = []

    def write(self, out: list[str]) -> None:
        out.append(f'<{self.tag} xmlns="{NS}">' if self.namespace else f"<{self.tag}>")
        if self.text:
            out.append(escape_text(self.text))
        for child in self.children:
            child.write(out)
        out.append(f"</{self.tag}>")


class Raw:
    """A piece of document already written (and escaped) as XML."""

    __slots__ = ("xml",)

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def write(self, out: list[str]) -> None:
        out.append(self.xml)


def escape_text(text: str) -> str:
    """Text content as XML: ``&``, ``<``, ``>`` escaped, and every character
    XML 1.0 cannot carry as a character reference (module doc)."""
    if _PLAIN_TEXT.fullmatch(text):
        return text
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return _NON_XML_CHARS.sub(_char_ref, text)


def root(tag: str, namespace: bool = True) -> El:
    return El(tag, namespace)


def sub(parent: El, tag: str, text: str | int | None = None) -> El:
    el = El(tag)
    if text is not None:
        el.text = str(text)
    parent.children.append(el)
    return el


def leaves(parent: El, *elements: tuple[str, str | int]) -> None:
    """``(tag, text)`` children of ``parent``, in the order given (S3's documented order)."""
    for tag, text in elements:
        sub(parent, tag, text)


def xml_bool(value: bool) -> str:
    return "true" if value else "false"


def serialize(root: El) -> bytes:
    out: list[str] = []
    root.write(out)
    return XML_DECLARATION + "".join(out).encode("utf-8")


def owner(parent: El, owner: tuple[str, str]) -> None:
    el = sub(parent, "Owner")
    sub(el, "ID", owner[0])
    if owner[1]:
        sub(el, "DisplayName", owner[1])


# ---------------------------------------------------------------- parsing

def local(tag: object) -> str | None:
    """Local name of an element tag in no namespace or S3's; None otherwise
    (comments, processing instructions, foreign namespaces)."""
    if not isinstance(tag, str):
        return None
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return local if ns == NS else None
    return tag


def parse(body: bytes, limit: int, root_name: str) -> ET.Element:
    if len(body) > limit:
        raise E.MalformedXML()
    try:
        root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    except (ET.ParseError, ValueError) as exc:  # DefusedXmlException is a ValueError
        raise E.MalformedXML() from exc
    if local(root.tag) != root_name:
        raise E.MalformedXML()
    return root


def children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == name]


def encoder(encoding_type: str | None):
    """``(enc, e)``: whether the client asked for ``encoding-type=url``, and the function
    that writes a key, prefix or marker as that asks (URL-encoded, or as it is)."""
    enc = encoding_type == "url"

    def e(v: str) -> str:
        return url_encode(v) if enc else v
    return enc, e


def checksum_element(alg: str) -> str:
    """``crc32``/``CRC32`` -> ``ChecksumCRC32``."""
    return ELEMENT_NAMES[alg.lower()]


def principal_xml(tag: str, principal: tuple[str, str]) -> str:
    """``<Owner>``/``<Initiator>`` with ID and (when non-empty) DisplayName,
    as :func:`owner` writes them."""
    pid, name = principal
    xml = f"<{tag}><ID>{escape_text(pid)}</ID>"
    if name:
        xml += f"<DisplayName>{escape_text(name)}</DisplayName>"
    return xml + f"</{tag}>"


def leaf_text(el: ET.Element) -> str:
    """Text of an element that must hold only text (no child elements)."""
    if len(el):
        raise E.MalformedXML()
    return el.text or ""


def only_child(el: ET.Element, name: str) -> ET.Element | None:
    """The one child ``name`` of ``el``: None when absent; MalformedXML when repeated
    (S3's schemas allow these elements once)."""
    found = children(el, name)
    if len(found) > 1:
        raise E.MalformedXML()
    return found[0] if found else None


#: The schemas' ``Integer`` is a 32-bit int (the SDKs' i32): a larger number is not one.
INT32_MAX = 2**31 - 1


def int_leaf(el: ET.Element, name: str) -> int | None:
    """The one child ``name`` of ``el`` as the schema's Integer (None when absent): ASCII
    digits with an optional sign, within a 32-bit int, else MalformedXML, as a document
    that does not fit the schema is. Whether the number makes sense is the caller's
    question (:func:`check_positive`)."""
    c = only_child(el, name)
    if c is None:
        return None
    n = parse_int(leaf_text(c).strip())
    if n is None or not -INT32_MAX - 1 <= n <= INT32_MAX:
        raise E.MalformedXML()
    return n


def check_positive(value: int | None, name: str, message: str) -> int | None:
    """``value`` (None: not given) unless it is zero or negative: InvalidArgument naming
    the element, with the caller's S3 message."""
    if value is not None and value <= 0:
        raise E.InvalidArgument(message, ArgumentName=name, ArgumentValue=str(value))
    return value


def common_prefixes(root: El, prefixes: list[str], enc: bool) -> None:
    """A listing's ``CommonPrefixes``, URL-encoded when ``enc``."""
    for p in prefixes:
        cp = sub(root, "CommonPrefixes")
        sub(cp, "Prefix", url_encode(p) if enc else p)
