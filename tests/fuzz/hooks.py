"""schemathesis hooks for tests/fuzz/run.sh (loaded through SCHEMATHESIS_HOOKS).

Idempotency-Key: the SPEC makes a key name one request: the same key with another body is a
422. A schema cannot say "a new key for each distinct request", and the generator draws the
same few keys ("0", "!") for unrelated requests, so those would all be 422s that no client
following the contract would see. Before each call, a key that is valid by the document gets a
suffix derived from the request itself (method, path, query, body): the same request keeps the
same key (so replays are still exercised), a different request gets a different key. Keys that
are invalid by the document are sent unchanged, so their 400 is still checked.

Files: a dataset upload's body is a CSV or Parquet file, which a JSON Schema (`type: string`,
`format: binary`) cannot describe, so the generator would only ever send noise (every bit of
it a correct 422). The strategies below make real files instead: CSVs of 1 to 4 columns and 1
to 12 rows (sometimes with a BOM, sometimes CRLF) and small Parquet files written by pyarrow.
The `format` query parameter overrides the content type (SPEC section 3), so a valid `format`
is set to the format of the body drawn for it; an invalid one is sent as drawn.
"""

import hashlib
import io
import itertools
import re

import pyarrow as pa
import pyarrow.parquet as pq
import schemathesis
from hypothesis import strategies as st

_SENDS = itertools.count()
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


def _unique_idempotency_key(case) -> None:
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value = headers[name]
        if isinstance(value, str) and VALID_KEY.match(value):
            suffix = _fingerprint(case)
            if case.media_type and case.media_type.startswith("multipart/"):
                # Each send draws a new boundary, so the same case is different bytes each time:
                # only a new key is honest for it.
                suffix += f".{next(_SENDS)}"
            headers[name] = f"{value[:200]}.{suffix}"


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
CELLS = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.3f}"),
    st.sampled_from(["yes", "no", "red", "blue", "2026-01-02"]),
)


@st.composite
def csv_files(draw):
    columns = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=len(columns), max_size=len(columns)),
            min_size=1,
            max_size=12,
        )
    )
    end = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    lines = [",".join(columns)] + [",".join(row) for row in rows]
    return (bom + end.join(lines) + end).encode("utf-8")


def _parquet(table: dict) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table(table), out)
    return out.getvalue()


PARQUET_FILES = [
    _parquet({"x": [1, 2, 3], "y": ["a", "b", "a"]}),
    _parquet({"price": [1.5, 2.5, None, 4.0], "rooms": [1, 2, 3, 4], "sold": [True, False, True, None]}),
    _parquet({"city": ["Paris", "Oslo"], "when": ["2026-01-01", "2026-02-01"]}),
]
parquet_files = st.sampled_from(PARQUET_FILES)

schemathesis.openapi.media_type("text/csv", csv_files())
schemathesis.openapi.media_type("application/vnd.apache.parquet", parquet_files)
# Octet-stream bodies are told apart by Parquet's magic bytes (a CSV needs `?format=csv` or a
# CSV content type, SPEC section 3), so the files drawn for them are Parquet files.
schemathesis.openapi.media_type("application/octet-stream", parquet_files)

FORMATS = {"csv", "parquet"}


def _align_format(case) -> None:
    query = case.query
    fmt = query.get("format") if query else None
    if not isinstance(fmt, str) or fmt not in FORMATS or not isinstance(case.body, bytes):
        return
    query["format"] = "parquet" if case.body.startswith(b"PAR1") else "csv"


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.method.upper() == "POST" and case.path.endswith("/datasets"):
        _align_format(case)
    _unique_idempotency_key(case)
