"""aws-chunked body decoding, as an incremental (sans-I/O) parser.

Formats (S3 API reference, "Signature Calculations for the Authorization
Header: Transferring Payload in Multiple Chunks" and "... Including Trailing
Headers"):

* signed (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``)::

      hex-size;chunk-signature=SIG\\r\\n DATA \\r\\n ... 0;chunk-signature=SIG\\r\\n

* unsigned (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``)::

      hex-size\\r\\n DATA \\r\\n ... 0\\r\\n

then, with trailers, lines such as ``x-amz-checksum-crc32:VALUE\\r\\n`` (and in
signed mode ``x-amz-trailer-signature:SIG\\r\\n``), and finally an empty line
``\\r\\n``.

Chunk signatures chain from the seed signature (the Authorization header's);
the trailer signature chains from the final 0-size chunk's signature and
covers the trailer lines as sent, each ending in ``\\n``.

Leniency: the AWS JS SDK v3 (``getAwsChunkedEncodingStream``) ends an unsigned
body with just ``0\\r\\n`` when it sends no checksum, so in unsigned mode EOF
right after the last-chunk line is accepted. Line ends may be CRLF or bare LF.
Nothing else is relaxed; botocore's ``AwsChunkedWrapper`` sends the full form.

Data is handed back as it arrives (never a whole chunk held in memory); a
chunk's signature is checked when its last byte has arrived, so callers must
treat everything returned as provisional until :meth:`finish` succeeds.
"""
from __future__ import annotations

import hashlib
import hmac

from minis3.core import errors as E
from minis3.core import sigv4

_MAX_LINE = 4096          # chunk header / trailer line, bytes
_MAX_TRAILER_LINES = 64
_MAX_SIZE_DIGITS = 16
_HEX = frozenset(b"0123456789abcdefABCDEF")

# parser states
_HEADER, _DATA, _DATA_END, _FINAL, _TRAILER, _DONE = range(6)


class AwsChunkedDecoder:
    """Feed raw body bytes, get decoded payload pieces back.

    ``signed``: chunk headers carry ``chunk-signature`` and are verified (needs
    ``signing_key``, ``seed_signature``, ``amz_date``, ``scope`` from
    :class:`minis3.core.sigv4.AuthResult`). ``trailer``: a trailer section
    follows the final chunk (signed mode: it must end with a valid
    ``x-amz-trailer-signature``).
    """

    def __init__(self, *, signed: bool, trailer: bool, signing_key: bytes | None = None,
                 seed_signature: str | None = None, amz_date: str | None = None,
                 scope: str | None = None, max_chunk_size: int = 16 * 1024 * 1024):
        if signed and None in (signing_key, seed_signature, amz_date, scope):
            raise ValueError("signed aws-chunked decoding needs signing_key, seed_signature, "
                             "amz_date and scope")
        self._signed = signed
        self._trailer = trailer
        self._key = signing_key
        self._prev_signature = seed_signature
        self._amz_date = amz_date
        self._scope = scope
        self._max_chunk_size = max_chunk_size

        self._state = _HEADER
        self._line = bytearray()            # partial line (headers, trailers)
        self._remaining = 0                 # data bytes left in the current chunk
        self._hasher = None
        self._expected_signature: str | None = None
        self._saw_cr = False                # inside the CRLF that ends chunk data
        self._trailer_lines = 0
        self._trailer_bytes = bytearray()   # what the trailer signature covers
        self._trailer_signed = False
        self._error: E.S3Error | None = None

        self.done = False
        self.trailers: dict[str, str] = {}
        self.decoded_length = 0

    # ------------------------------------------------------------------ API

    def feed(self, data: bytes) -> list[bytes]:
        """Consume raw bytes; return the payload pieces decoded from them."""
        if self._error is not None:
            raise self._error
        out: list[bytes] = []
        try:
            self._consume(memoryview(data), out)
        except E.S3Error as exc:
            self._error = exc
            raise
        return out

    def finish(self) -> None:
        """Call at EOF: raise IncompleteBody unless the body ended properly."""
        if self._error is not None:
            raise self._error
        if self.done:
            return
        # AWS JS SDK v3 without a checksum: "... 0\r\n" and nothing more.
        if (not self._signed and self._state in (_FINAL, _TRAILER) and not self._line
                and self._trailer_lines == 0):
            self._state = _DONE
            self.done = True
            return
        self._error = E.IncompleteBody("The request body ended before the final aws-chunked chunk"
                                       + (" and trailer" if self._trailer else "") + ".")
        raise self._error

    # ------------------------------------------------------------ internals

    def _consume(self, data: memoryview, out: list[bytes]) -> None:
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = bytes(data[pos:pos + take])
                pos += take
                self._remaining -= take
                self.decoded_length += take
                if self._hasher is not None:
                    self._hasher.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    if self._signed:
                        self._verify_chunk(self._hasher.hexdigest())
                    self._state = _DATA_END
                    self._saw_cr = False
            elif state == _DATA_END:
                byte = data[pos]
                pos += 1
                if byte == 0x0D and not self._saw_cr:
                    self._saw_cr = True
                elif byte == 0x0A:
                    self._state = _HEADER
                else:
                    raise E.InvalidRequest("Malformed aws-chunked body: chunk data is not followed "
                                           "by CRLF (chunk size does not match the data).")
            elif state == _DONE:
                # Tolerate stray line ends after the end; refuse anything else.
                if any(b not in (0x0D, 0x0A) for b in data[pos:]):
                    raise E.InvalidRequest("Malformed aws-chunked body: data after the final chunk.")
                return
            else:  # line-oriented states: _HEADER, _FINAL, _TRAILER
                # Look for the line end within what the line may still grow by.
                window = bytes(data[pos:pos + _MAX_LINE + 1 - len(self._line)])
                nl = window.find(b"\n")
                if nl < 0:
                    self._line += window
                    pos += len(window)
                    if len(self._line) > _MAX_LINE:
                        raise E.InvalidRequest("Malformed aws-chunked body: line too long.")
                    continue
                self._line += window[:nl]
                pos += nl + 1
                line = bytes(self._line)
                self._line.clear()
                if line.endswith(b"\r"):
                    line = line[:-1]
                if state == _HEADER:
                    self._on_chunk_header(line)
                elif state == _FINAL:
                    if line:
                        raise E.InvalidRequest("Malformed aws-chunked body: unexpected data after "
                                               "the final chunk (trailers not announced).")
                    self._finish_ok()
                else:
                    self._on_trailer_line(line)

    def _on_chunk_header(self, line: bytes) -> None:
        """``hex-size[;chunk-signature=SIG]``."""
        size_part, _, ext = line.partition(b";")
        if not size_part or len(size_part) > _MAX_SIZE_DIGITS or any(b not in _HEX for b in size_part):
            raise E.InvalidRequest("Malformed aws-chunked body: invalid chunk size.")
        size = int(size_part, 16)
        if size > self._max_chunk_size:
            raise E.InvalidRequest(f"aws-chunked chunk of {size} bytes exceeds the maximum of "
                                   f"{self._max_chunk_size} bytes.")
        if self._signed:
            sig = None
            for item in ext.split(b";"):
                name, _, value = item.partition(b"=")
                if name.strip() == b"chunk-signature":
                    sig = value.strip().decode("ascii", "replace")
            if sig is None:
                raise E.InvalidRequest("Malformed aws-chunked body: chunk-signature missing.")
            self._expected_signature = sig
            self._hasher = hashlib.sha256()
        if size == 0:
            if self._signed:
                self._verify_chunk(sigv4.EMPTY_SHA256)
            self._state = _TRAILER if self._trailer else _FINAL
        else:
            self._remaining = size
            self._state = _DATA

    def _verify_chunk(self, chunk_sha256_hex: str) -> None:
        sts = sigv4.chunk_string_to_sign(self._amz_date, self._scope, self._prev_signature,
                                         chunk_sha256_hex)
        computed = sigv4.signature(self._key, sts)
        if not hmac.compare_digest(computed.encode("ascii"),
                                   (self._expected_signature or "").encode("ascii", "replace")):
            raise E.SignatureDoesNotMatch(StringToSign=sts,
                                          SignatureProvided=self._expected_signature or "")
        self._prev_signature = computed

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            if self._signed and not self._trailer_signed:
                # Tolerated blank line before x-amz-trailer-signature; the body
                # is incomplete if the signature never comes.
                return
            self._finish_ok()
            return
        if self._trailer_signed:
            raise E.InvalidRequest("Malformed aws-chunked body: trailer after x-amz-trailer-signature.")
        self._trailer_lines += 1
        if self._trailer_lines > _MAX_TRAILER_LINES:
            raise E.InvalidRequest("Malformed aws-chunked body: too many trailing headers.")
        name, sep, value = line.partition(b":")
        name_s = name.strip().lower().decode("latin-1")
        if not sep or not name_s:
            raise E.InvalidRequest("Malformed aws-chunked body: invalid trailing header.")
        value_s = value.strip().decode("latin-1")
        if name_s == "x-amz-trailer-signature":
            if self._signed:
                sts = sigv4.trailer_string_to_sign(self._amz_date, self._scope,
                                                   self._prev_signature, bytes(self._trailer_bytes))
                computed = sigv4.signature(self._key, sts)
                if not hmac.compare_digest(computed.encode("ascii"), value_s.encode("latin-1")):
                    raise E.SignatureDoesNotMatch(StringToSign=sts, SignatureProvided=value_s)
                self._prev_signature = computed
                self._trailer_signed = True
            return
        self._trailer_bytes += line + b"\n"
        self.trailers[name_s] = value_s

    def _finish_ok(self) -> None:
        self._state = _DONE
        self.done = True
