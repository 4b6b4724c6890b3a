"""What both templates (infra/template.yaml and the CDK app in infra/cdk) must describe: the
functions, the routes and where they lead, the environment the code reads. Used by
validate_template.py (SAM) and parity.py (CDK)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HTTP_FUNCTIONS = ("KeysFunction", "DatasetsFunction", "ModelsFunction", "InferenceFunction")
QUEUE_FUNCTIONS = ("TrainerFunction", "TasksFunction")
ALL_FUNCTIONS = HTTP_FUNCTIONS + QUEUE_FUNCTIONS
# Binary of the `functions` package each function runs.
BINARIES = {
    "KeysFunction": "keys",
    "DatasetsFunction": "datasets",
    "ModelsFunction": "models",
    "InferenceFunction": "inference",
    "TrainerFunction": "trainer",
    "TasksFunction": "tasks",
}
# SQS-triggered functions: the queue, its dead-letter queue.
QUEUES = {
    "TrainerFunction": ("JobQueue", "JobDeadLetterQueue"),
    "TasksFunction": ("TaskQueue", "TaskDeadLetterQueue"),
}

# Every route key the API must have, and the function it must reach.
EXPECTED_ROUTES: dict[str, str] = {"$default": "KeysFunction"}
for _prefix in ("", "/v1"):
    EXPECTED_ROUTES.update(
        {
            f"GET {_prefix}/me": "KeysFunction",
            f"ANY {_prefix}/api-keys": "KeysFunction",
            f"ANY {_prefix}/api-keys/{{proxy+}}": "KeysFunction",
            f"GET {_prefix}/health": "KeysFunction",
            f"GET {_prefix}/openapi.json": "InferenceFunction",
            f"ANY {_prefix}/datasets": "DatasetsFunction",
            f"ANY {_prefix}/datasets/{{proxy+}}": "DatasetsFunction",
            f"ANY {_prefix}/models": "ModelsFunction",
            f"ANY {_prefix}/models/{{proxy+}}": "ModelsFunction",
            f"POST {_prefix}/models/{{model_name}}/{{model_version}}/infer": "InferenceFunction",
            f"POST {_prefix}/models/{{model_name}}/{{model_version}}/predictions": (
                "InferenceFunction"
            ),
            f"ANY {_prefix}/models/{{model_name}}/{{model_version}}/prediction-jobs": (
                "InferenceFunction"
            ),
            f"ANY {_prefix}/models/{{model_name}}/{{model_version}}/prediction-jobs/{{proxy+}}": (
                "InferenceFunction"
            ),
        }
    )
# The legacy Plexe client surface (SPEC §8).
EXPECTED_ROUTES.update(
    {
        "ANY /v0/uploads": "DatasetsFunction",
        "ANY /v0/uploads/{proxy+}": "DatasetsFunction",
        "POST /v0/models/{model_name}/{model_version}/infer": "InferenceFunction",
        "ANY /v0/models": "ModelsFunction",
        "ANY /v0/models/{proxy+}": "ModelsFunction",
    }
)

# Requests and the function API Gateway must hand them to, under its route selection rules
# (routes.py): specific routes beside greedy ones, the longest greedy prefix, `$default`.
SAMPLE_REQUESTS: dict[str, str] = {
    "GET /health": "KeysFunction",
    "GET /v1/me": "KeysFunction",
    "DELETE /api-keys/key_1": "KeysFunction",
    "GET /console": "KeysFunction",
    "GET /console/assets/app.js": "KeysFunction",
    "GET /": "KeysFunction",
    "GET /no/such/path": "KeysFunction",
    "POST /health": "KeysFunction",  # GET only: the 405/404 comes from the app, not API Gateway
    "POST /datasets": "DatasetsFunction",
    "PUT /v0/uploads/up_1": "DatasetsFunction",
    "GET /models": "ModelsFunction",
    "POST /models/churn": "ModelsFunction",
    "GET /models/churn/versions/2": "ModelsFunction",
    "GET /models/churn/2/infer": "ModelsFunction",  # POST only, as the app
    "POST /models/churn/2/infer": "InferenceFunction",
    "POST /v1/models/churn/latest/predictions": "InferenceFunction",
    "POST /models/churn/2/prediction-jobs": "InferenceFunction",
    "GET /v1/models/churn/2/prediction-jobs": "InferenceFunction",
    "GET /models/churn/2/prediction-jobs/pjob_1": "InferenceFunction",
    "GET /v1/models/churn/2/prediction-jobs/pjob_1/result": "InferenceFunction",
    "POST /v0/models/churn/2/infer": "InferenceFunction",
    "GET /v0/models/churn": "ModelsFunction",
    # The document is assembled from every group's routes: the inference function links them all.
    "GET /openapi.json": "InferenceFunction",
}

# What the code reads (shared/src/config.rs, the rate-limit middleware, lambda_http). Log level
# and format come from Lambda itself (AWS_LAMBDA_LOG_LEVEL / AWS_LAMBDA_LOG_FORMAT, set from
# LoggingConfig), so no RUST_LOG.
EXPECTED_ENV = {
    "PLEXE_BACKEND",
    "PLEXE_TABLE",
    "PLEXE_BUCKET",
    "PLEXE_QUEUE_URL",
    "PLEXE_DLQ_URL",
    "PLEXE_TASK_QUEUE_URL",
    "PLEXE_TASK_DLQ_URL",
    "PLEXE_RATE_LIMIT_BASIC",
    "PLEXE_RATE_LIMIT_PRO",
    "PLEXE_BUILD_RATE_LIMIT",
    "PLEXE_CONCURRENT_BUILDS_BASIC",
    "PLEXE_CONCURRENT_BUILDS_PRO",
    "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH",
    "SSL_CERT_FILE",
}

# Where the provided.al2023 runtime keeps its CA bundle: the AWS SDK's TLS roots come from this
# one file (rustls-native-certs reads SSL_CERT_FILE) instead of every file of the directory.
LAMBDA_CA_BUNDLE = "/etc/pki/tls/certs/ca-bundle.crt"

# Bucket prefixes that expire by lifecycle rule, in days.
EXPIRING_PREFIXES = {"uploads/": 2, "idempotency/": 1, "predictions/": 7}


def max_attempts() -> int:
    """The app's own limit on build attempts (MAX_ATTEMPTS in the jobs module)."""
    source = (ROOT / "shared/src/domain/models/jobs.rs").read_text()
    match = re.search(r"pub const MAX_ATTEMPTS: u32 = (\d+);", source)
    if not match:
        raise RuntimeError("MAX_ATTEMPTS not found in shared/src/domain/models/jobs.rs")
    return int(match.group(1))
