"""The IAM actions each function's role holds: no more, no fewer.

One table for both templates: tests/infra/validate_template.py checks the SAM template's roles
against it and tests/infra/parity.py the CDK app's (`tests/infra/check_cdk.sh`). When the code
of a function starts calling a port method it did not call before, add the method to CALLS
below and the actions to ACTIONS (the check says which are missing on which side).

How the table is derived. A function calls the ports (shared/src/ports) only through the code
paths of its group: the HTTP middleware every protected route runs (auth: store.get; rate
limit: store.increment; idempotency: store.put/get/delete and, for answers too large for an
item, blobs.put/get under idempotency/), its routes (shared/src/http/routes/<group>.rs) and the
domain code they reach (shared/src/domain), or the trainer (shared/src/trainer). Each port
method is one or more AWS API calls, and each API call needs the IAM actions in PORT_ACTIONS.
"""

from __future__ import annotations

# What each port method's AWS adapter calls, as IAM actions.
PORT_ACTIONS: dict[str, set[str]] = {
    # shared/src/ports/store/dynamo.rs. `put` and `increment` are UpdateItem (an update
    # expression that also bumps the revision; PutItem is never called). `transact` is
    # TransactWriteItems, which IAM authorizes per item by the action of each op it holds: a Put
    # op is an Update, then Delete and ConditionCheck.
    "store.ping": {"dynamodb:DescribeTable"},
    "store.get": {"dynamodb:GetItem"},
    "store.put": {"dynamodb:UpdateItem"},
    "store.delete": {"dynamodb:DeleteItem"},
    "store.query": {"dynamodb:Query"},
    "store.increment": {"dynamodb:UpdateItem"},
    "store.transact": {
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
    # shared/src/ports/blobs/s3.rs. HeadObject (`size`) is authorized by s3:GetObject. Without
    # s3:ListBucket on the bucket S3 answers 403 instead of 404 for a missing key, which every
    # reader of a possibly absent blob relies on. A presigned PUT URL is signed with the
    # function's credentials, so the signing role needs s3:PutObject on the key.
    "blobs.get": {"s3:GetObject", "s3:ListBucket"},
    "blobs.get_to_file": {"s3:GetObject", "s3:ListBucket"},
    "blobs.size": {"s3:GetObject", "s3:ListBucket"},
    "blobs.put": {"s3:PutObject"},
    "blobs.put_file": {"s3:PutObject"},
    "blobs.delete": {"s3:DeleteObject"},
    "blobs.presign_put": {"s3:PutObject"},
    # A presigned GET URL likewise needs s3:GetObject on the key from the signing role.
    "blobs.presign_get": {"s3:GetObject"},
    "blobs.delete_older_than": {"s3:ListBucket", "s3:DeleteObject"},
    # shared/src/ports/queue/sqs.rs (`dead_letters` receives from the DLQ and changes the
    # visibility back; only operators call it, through `plexe admin`).
    "queue.send": {"sqs:SendMessage"},
    "queue.receive": {"sqs:ReceiveMessage"},
    "queue.ack": {"sqs:DeleteMessage"},
    "queue.hand_back": {"sqs:ChangeMessageVisibility"},
    "queue.dead_letters": {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"},
    # Not the function's code: what an SQS event source mapping needs from the function's role
    # to poll the queue and delete the messages a batch completed (AWS Lambda's SQS docs; the
    # same three actions as the AWSLambdaSQSQueueExecutionRole managed policy, here on the one
    # queue instead of "*").
    "event_source.sqs": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
}

# The port methods each function calls (see the module docs for where they come from).
_HTTP = {"store.get", "store.put", "store.delete", "store.increment", "store.query"}
CALLS: dict[str, set[str]] = {
    # /me, /api-keys (create is a transaction), /health (ping), idempotent answers.
    "KeysFunction": _HTTP | {"store.ping", "store.transact", "blobs.get", "blobs.put"},
    # Uploads, datasets, upload sessions (presigned PUT, completion: size, get_to_file,
    # put_file, delete of the staged copy), previews; large completions go to the task queue.
    "DatasetsFunction": _HTTP
    | {
        "store.transact",
        "blobs.get",
        "blobs.get_to_file",
        "blobs.size",
        "blobs.put",
        "blobs.put_file",
        "blobs.delete",
        "blobs.presign_put",
        "queue.send",
    },
    # Builds (transaction + job message), versions, deployments, artifact download (in place,
    # or a presigned URL when too large), model deletion (deletes artifacts), builds from an
    # upload that was PUT but not completed.
    "ModelsFunction": _HTTP
    | {
        "store.transact",
        "blobs.get",
        "blobs.get_to_file",
        "blobs.size",
        "blobs.presign_get",
        "blobs.put",
        "blobs.put_file",
        "blobs.delete",
        "queue.send",
    },
    # Predictions (artifact read), idempotency (answers too large for an item, under
    # idempotency/), batch prediction jobs (the input's size, the job queued to the task
    # function, the result's size and presigned URL).
    "InferenceFunction": _HTTP
    | {"blobs.get", "blobs.put", "blobs.size", "blobs.presign_get", "queue.send"},
    # Claims the job (get + conditional put), log lines, versions, the final transaction; reads
    # the dataset and its profile; writes the artifact and deletes it when the version cannot
    # become READY; hands back a message it could not finish (shared/src/runtime/lambda.rs).
    "TrainerFunction": {
        "queue.hand_back",
        "store.get",
        "store.put",
        "store.transact",
        "blobs.get",
        "blobs.get_to_file",
        "blobs.put",
        "blobs.delete",
        "event_source.sqs",
    },
    # Upload completions (shared/src/domain/tasks.rs: as DatasetsFunction's, without the HTTP
    # layer): the session's claim and result, the staged file read and deleted, the dataset
    # written in a transaction with the session. Batch prediction jobs
    # (shared/src/domain/prediction_jobs.rs): the job's claim and outcome, the input read, the
    # artifact read, the result written.
    "TasksFunction": {
        "store.get",
        "store.put",
        "store.transact",
        "blobs.get",
        "blobs.get_to_file",
        "blobs.size",
        "blobs.put",
        "blobs.put_file",
        "blobs.delete",
        "event_source.sqs",
    },
}

# Resource tokens (tests/infra/cfn_model.py maps each template's ARNs onto them).
TABLE = "table"  # the table (created, or ExistingTableName)
BUCKET = "bucket"  # the bucket itself (ListBucket)
LOG_GROUP = "own-log-group"  # the function's own log group (its LoggingConfig.LogGroup)
ANY = "*"


def objects(prefix: str = "") -> str:
    """Objects of the bucket under `prefix` ("" = every object)."""
    return f"objects:{prefix}*"


def queue(name: str) -> str:
    return f"queue:{name}"


_LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
_EVENT_SOURCE = PORT_ACTIONS["event_source.sqs"]

# Function → resource token → actions, with Effect Allow. Nothing else may be granted.
ACTIONS: dict[str, dict[str, set[str]]] = {
    "KeysFunction": {
        LOG_GROUP: _LOGS,
        TABLE: {
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:Query",
        },
        # Its only blobs are idempotent answers.
        objects("idempotency/"): {"s3:GetObject", "s3:PutObject"},
        BUCKET: {"s3:ListBucket"},
    },
    "DatasetsFunction": {
        LOG_GROUP: _LOGS,
        TABLE: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:Query",
        },
        objects(): {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        BUCKET: {"s3:ListBucket"},
        queue("TaskQueue"): {"sqs:SendMessage"},
    },
    "ModelsFunction": {
        LOG_GROUP: _LOGS,
        TABLE: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:Query",
        },
        objects(): {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        BUCKET: {"s3:ListBucket"},
        queue("JobQueue"): {"sqs:SendMessage"},
        # Large upload completions (a build from an upload not completed yet).
        queue("TaskQueue"): {"sqs:SendMessage"},
    },
    "InferenceFunction": {
        LOG_GROUP: _LOGS,
        TABLE: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        },
        objects("models/"): {"s3:GetObject"},
        objects("idempotency/"): {"s3:GetObject", "s3:PutObject"},
        objects("uploads/"): {"s3:GetObject"},
        objects("datasets/"): {"s3:GetObject"},
        objects("predictions/"): {"s3:GetObject"},
        BUCKET: {"s3:ListBucket"},
        queue("TaskQueue"): {"sqs:SendMessage"},
    },
    "TrainerFunction": {
        LOG_GROUP: _LOGS,
        TABLE: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        },
        objects("datasets/"): {"s3:GetObject"},
        # models/<account>/<model>/<version>/{model.onnx,pipeline.json,metadata.json}: written, and deleted
        # again when the version cannot become READY.
        objects("models/"): {"s3:PutObject", "s3:DeleteObject"},
        BUCKET: {"s3:ListBucket"},
        queue("JobQueue"): _EVENT_SOURCE | PORT_ACTIONS["queue.hand_back"],
    },
    "TasksFunction": {
        LOG_GROUP: _LOGS,
        TABLE: {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        },
        objects("uploads/"): {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        objects("datasets/"): {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
        objects("models/"): {"s3:GetObject"},
        objects("predictions/"): {"s3:PutObject"},
        BUCKET: {"s3:ListBucket"},
        queue("TaskQueue"): _EVENT_SOURCE,
    },
}

# Added to every role when EnableTracing is "true" (X-Ray's write actions take no resource).
TRACING: dict[str, set[str]] = {ANY: {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}}


def expected_grants(function: str, tracing: bool) -> set[tuple[str, str]]:
    """(action, resource token) pairs the function's role must hold, exactly."""
    grants = {(a, r) for r, actions in ACTIONS[function].items() for a in actions}
    if tracing:
        grants |= {(a, r) for r, actions in TRACING.items() for a in actions}
    return grants


def self_check() -> list[str]:
    """The table's actions are exactly what CALLS derives (the logs actions aside)."""
    problems = []
    for function, calls in CALLS.items():
        derived = set().union(*(PORT_ACTIONS[c] for c in calls))
        granted = {a for r, acts in ACTIONS[function].items() if r != LOG_GROUP for a in acts}
        if derived != granted:
            problems.append(
                f"iam_actions: {function}: the table grants {sorted(granted - derived)} that "
                f"no call needs and lacks {sorted(derived - granted)} that its calls need"
            )
    if set(CALLS) != set(ACTIONS):
        problems.append("iam_actions: CALLS and ACTIONS name different functions")
    return problems
