"""schemathesis hooks for scanwatch (loaded by tests/api/schemathesis.sh).

`POST /api/v1/events` takes JSON Lines (`application/x-ndjson`), a media type
schemathesis has no serializer for: send the generated text as UTF-8 as it is
(lone surrogates pass through, so the server also sees bodies that are not UTF-8),
and anything else (the event objects of the schema) as one JSON line.
"""

import gzip
import json
import struct

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, bytes):
        body = value
    elif isinstance(value, str):
        body = value.encode("utf-8", "surrogatepass")
    else:
        body = (json.dumps(value) + "\n").encode("utf-8")
    # Encode as the request says, so encoded bodies reach the parser too.
    headers = {k.lower(): v for k, v in (ctx.case.headers or {}).items()}
    encoding = str(headers.get("content-encoding", "")).lower()
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "zstd":
        body = zstd_raw(body)
    return body


def zstd_raw(data):
    """A zstd frame of raw (stored) blocks: valid zstd without a zstd library."""
    block = 1 << 17
    # magic; frame header: no content size, no checksum, window 2^17 bytes
    out = bytearray(struct.pack("<I", 0xFD2FB528)) + bytes([0x00, 7 << 3])
    chunks = [data[i:i + block] for i in range(0, len(data), block)] or [b""]
    for i, chunk in enumerate(chunks):
        last = 1 if i == len(chunks) - 1 else 0
        header = last | (0 << 1) | (len(chunk) << 3)  # block type 0: raw
        out += struct.pack("<I", header)[:3] + chunk
    return bytes(out)
