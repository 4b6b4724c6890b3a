"""A plexe flow through a Python client generated from the live /openapi.json.

Run by functions/tests/openapi_python_client.rs after `openapi-python-client generate` and a
pip install of the result: upload a dataset, start a build, poll its status until READY,
deploy, predict one row, list models, and read an error answer as the envelope.

Usage: PLEXE_URL=… PLEXE_API_KEY=… python flow.py DATASET.csv
"""

import csv
import io
import os
import sys
import time

from plexe_client import AuthenticatedClient
from plexe_client.api.datasets import create_dataset
from plexe_client.api.deployments import deploy
from plexe_client.api.inference import infer
from plexe_client.api.models import create_model, list_models, version_status
from plexe_client.models import (
    BuildAccepted,
    CreateModelRequest,
    DatasetView,
    DeploymentView,
    DeployRequest,
    ErrorEnvelope,
    FileFormat,
    InferBody,
    InferResponse,
    ModelList,
    VersionStatus,
    VersionStatusView,
)
from plexe_client.types import File

# A build of a 1,300-row table takes seconds; this only bounds a hung one.
BUILD_DEADLINE_S = 300


def main(dataset_path: str) -> None:
    client = AuthenticatedClient(
        base_url=os.environ["PLEXE_URL"], token=os.environ["PLEXE_API_KEY"]
    )
    with open(dataset_path, "rb") as f:
        data = f.read()

    dataset = create_dataset.sync(
        client=client,
        body=File(payload=io.BytesIO(data), file_name="titanic.csv"),
        name="titanic-py",
        format_=FileFormat.CSV,
    )
    assert isinstance(dataset, DatasetView), dataset
    assert dataset.name == "titanic-py"
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert dataset.row_count == len(rows), (dataset.row_count, len(rows))

    accepted = create_model.sync(
        "titanic-py",
        client=client,
        body=CreateModelRequest(
            intent="predict whether a passenger survived",
            dataset_id=dataset.dataset_id,
            time_budget_s=5,
        ),
    )
    assert isinstance(accepted, BuildAccepted), accepted
    assert accepted.model_version == "v1.0"

    deadline = time.monotonic() + BUILD_DEADLINE_S
    while True:
        status = version_status.sync("titanic-py", accepted.model_version, client=client)
        assert isinstance(status, VersionStatusView), status
        assert 0 <= status.build_progress <= 100
        if status.status in (VersionStatus.READY, VersionStatus.ERROR):
            break
        assert time.monotonic() < deadline, f"build still {status.status} after {BUILD_DEADLINE_S}s"
        time.sleep(0.5)
    assert status.status == VersionStatus.READY, status
    assert status.build_progress == 100
    assert status.result is not None and 0.5 < status.result.metric_value <= 1.0

    deployment = deploy.sync("titanic-py", client=client, body=DeployRequest())
    assert isinstance(deployment, DeploymentView), deployment
    assert deployment.status.value == "ACTIVE"

    row = dict(rows[0])
    del row["survived"]
    answer = infer.sync(
        "titanic-py", "latest", client=client, body=InferBody.from_dict(row)
    )
    assert isinstance(answer, InferResponse), answer
    result = answer.result.to_dict()
    assert result["survived"] in ("survived", "died"), result
    assert 0.0 <= result["survived_probability"] <= 1.0, result

    models = list_models.sync(client=client)
    assert isinstance(models, ModelList), models
    assert [m.model_name for m in models.models] == ["titanic-py"]
    assert models.models[0].status == VersionStatus.READY
    assert models.pagination.total == 1

    missing = version_status.sync("no-such-model", "latest", client=client)
    assert isinstance(missing, ErrorEnvelope), missing
    assert missing.error.code == "not_found" and missing.error.status == 404

    print(
        f"generated client flow ok: {dataset.dataset_id}, {accepted.model_version} READY "
        f"({status.result.metric_name} {status.result.metric_value:.4f}), "
        f"predicted {result['survived']}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
