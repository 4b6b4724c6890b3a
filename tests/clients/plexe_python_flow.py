"""The published Plexe Python client (installed unmodified from ../shared/peers/plexe-python)
through its whole flow against a plexe server's legacy /v0 surface.

Run by functions/tests/plexe_python_client.rs with PLEXE_TEST_PYTHON. Environment:
PLEXE_API_KEY, PLEXE_BASE_URL (https://127.0.0.1:PORT/v0), SSL_CERT_FILE (the test's CA),
PLEXE_FLOW_CSV (a training CSV with a `survived` column), PLEXE_FLOW_DIR (a scratch folder),
PLEXE_FLOW_MODEL (the model name to build). Prints one JSON line of what it saw; any failed
check raises (non-zero exit).
"""

import csv
import json
import os
import sys
import time
from pathlib import Path

import httpx
import plexe
from plexe import PlexeAI

api_key = os.environ["PLEXE_API_KEY"]
base_url = os.environ["PLEXE_BASE_URL"]
source = Path(os.environ["PLEXE_FLOW_CSV"])
scratch = Path(os.environ["PLEXE_FLOW_DIR"])
model_name = os.environ["PLEXE_FLOW_MODEL"]
# The client module must be the installed peer, not a copy in this repository.
assert "site-packages" in plexe.__file__, plexe.__file__

client = PlexeAI(api_key=api_key, base_url=base_url)
seen = {}

# --- upload_files: one file, then two with the same header (one dataset), then a mismatch.
upload_one = client.upload_files(source)
assert isinstance(upload_one, str) and upload_one, upload_one

with source.open(newline="") as f:
    rows = list(csv.reader(f))
header, body = rows[0], rows[1:]
half = len(body) // 2
part_a, part_b = scratch / "part_a.csv", scratch / "part_b.csv"
for path, part in ((part_a, body[:half]), (part_b, body[half:])):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header] + part)
upload_two = client.upload_files([part_a, part_b])
assert isinstance(upload_two, str) and upload_two != upload_one

other = scratch / "other.csv"
other.write_text("a,b\n1,2\n3,4\n")
try:
    client.upload_files([part_a, other])
    raise AssertionError("files with different headers were accepted")
except httpx.HTTPStatusError as e:
    seen["mismatch_status"] = e.response.status_code
    seen["mismatch_error"] = e.response.json()["error"]

# --- build from the two-file upload, then wait for it.
goal = "predict whether a passenger survived"
model_version = client.build(goal=goal, model_name=model_name, upload_id=upload_two)
assert isinstance(model_version, str) and model_version, model_version
statuses = []
deadline = time.monotonic() + 600
while True:
    status = client.get_status(model_name, model_version)
    statuses.append(status["status"])
    if status["status"] == "completed":
        break
    if status["status"] == "failed":
        raise AssertionError(f"the build failed: {status.get('error')}")
    assert status["status"] in ("pending", "processing"), status
    if time.monotonic() > deadline:
        raise AssertionError(f"the build did not complete: {status}")
    time.sleep(0.5)
seen["final_status"] = status

# --- infer one row, then a batch (the client fans it out as concurrent infer calls).
inputs = [dict(zip(header, row)) for row in body[:5]]
for row in inputs:
    row.pop("survived")
one = client.infer(model_name=model_name, model_version=model_version, input_data=inputs[0])
assert isinstance(one, dict) and "prediction" in one, one
seen["infer"] = one
batch = client.batch_infer(model_name=model_name, model_version=model_version, inputs=inputs)
assert isinstance(batch, list) and len(batch) == len(inputs), batch
assert all("prediction" in r for r in batch), batch
assert batch[0] == one, (batch[0], one)
seen["batch"] = batch

# An invalid row is refused (the client raises on any non-2xx).
try:
    client.infer(model_name, model_version, {"no_such_field": 1})
    raise AssertionError("an invalid row was accepted")
except httpx.HTTPStatusError as e:
    seen["invalid_row_status"] = e.response.status_code

# --- the module-level functions (they build their own client from the environment).
os.environ["PLEXE_API_KEY"] = api_key
seen["status_via_module"] = client.get_status(model_name, model_version)["status"]

# --- cleanup_upload: the uploads go; the model keeps answering.
seen["cleanup"] = [client.cleanup_upload(upload_one), client.cleanup_upload(upload_two)]
again = client.infer(model_name, model_version, inputs[0])
assert again == one, (again, one)
try:
    client.cleanup_upload(upload_one)
    raise AssertionError("a deleted upload was deleted again")
except httpx.HTTPStatusError as e:
    seen["cleanup_again_status"] = e.response.status_code

seen["uploads"] = [upload_one, upload_two]
seen["model_version"] = model_version
print(json.dumps(seen))
sys.stdout.flush()
