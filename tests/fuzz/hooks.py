"""schemathesis hooks for tests/fuzz/run.sh (loaded through SCHEMATHESIS_HOOKS).

Idempotency-Key: the SPEC makes a key name one request: the same key with another body is a
422. A schema cannot say "a new key for each distinct request", and the generator draws the
same few keys ("0", "!") for unrelated requests, so those would all be 422s that no client
following the contract would see. Before each call, a key that is valid by the document gets a
suffix derived from the request itself (method, path, query, body): the same request keeps the
same key (so replays are still exercised), a different request gets a different key. Keys that
are invalid by the document are sent unchanged, so their 400 is still checked.
"""

import hashlib
import re

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _fingerprint(case) -> str:
    parts = [
        case.method,
        case.path,
        repr(sorted((case.path_parameters or {}).items())),
        repr(sorted((case.query or {}).items(), key=lambda kv: str(kv[0]))),
        repr(case.media_type),
        repr(case.body),
    ]
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value = headers[name]
        if isinstance(value, str) and VALID_KEY.match(value):
            headers[name] = f"{value[:200]}.{_fingerprint(case)}"
