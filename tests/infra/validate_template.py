"""Validates infra/template.yaml offline, without AWS credentials.

1. cfn-lint over the SAM template as written;
2. the SAM transform (samtranslator, the code CloudFormation runs for
   `Transform: AWS::Serverless-2016-10-31`) expands it into plain CloudFormation, and cfn-lint
   checks that: SAM-level mistakes (a bad event `Type`, `Runtime` or `FunctionResponseTypes`)
   only surface here;
3. the expanded template is checked for what the deployment needs (routes to the right
   function, and sample requests through API Gateway's route selection; limits, queue timing
   and redrive against the app's own attempt limit, logging, alarms; each role holds exactly
   the actions of tests/infra/iam_actions.py), with default parameters and with an existing
   table and bucket plus tracing, and broken copies of the template must be rejected, so each
   step is known to be able to fail.

Any cfn-lint match (error, warning or informational) fails. `sam validate --lint` runs beside
this script (tests/validate_template.sh); tests/infra/check_cdk.sh holds the CDK app to the same
expectations and to this template.

Usage: python tests/infra/validate_template.py [path/to/template.yaml]
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

REGION = "us-east-1"
# samtranslator rejects local CodeUri paths (sam build/package replace them with S3 locations).
PLACEHOLDER_CODE = "s3://plexe-template-lint/code.zip"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn_model  # noqa: E402
import iam_actions  # noqa: E402
import routes as route_rules  # noqa: E402
from expected import (  # noqa: E402
    ALL_FUNCTIONS,
    BINARIES,
    EXPECTED_ENV,
    EXPECTED_ROUTES,
    EXPIRING_PREFIXES,
    LAMBDA_CA_BUNDLE,
    QUEUES,
    SAMPLE_REQUESTS,
    max_attempts,
)

# Parameter values the deployment checks run under, beside the defaults: an existing table and
# bucket (every reference must follow), tracing on, an alarm address, Graviton.
SCENARIOS: dict[str, dict[str, str]] = {
    "defaults": {},
    "existing table and bucket, tracing, e-mail, arm64": {
        "ExistingTableName": "plexe-prod",
        "ExistingBucketName": "plexe-prod-data",
        "EnableTracing": "true",
        "AlarmEmail": "ops@example.com",
        "Architecture": "arm64",
        "LogLevel": "DEBUG",
        "LogRetentionDays": "90",
    },
}


class TemplateProblem(Exception):
    pass


def load_template(path: Path) -> dict[str, Any]:
    # cfn-lint's loader understands the short intrinsic forms (!Ref, !Sub, …).
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches:
        raise TemplateProblem("cannot parse the template:\n" + "\n".join(map(str, matches)))
    return json.loads(json.dumps(template))


def lint(source: dict[str, Any] | Path, what: str) -> list[str]:
    """cfn-lint, as `cfn-lint --regions us-east-1 FILE` runs it (in-process: one start-up)."""
    from cfnlint.api import ManualArgs, lint as cfn_lint, lint_file

    config = ManualArgs(regions=[REGION])
    if isinstance(source, Path):
        matches = lint_file(source, config=config)
    else:
        matches = cfn_lint(json.dumps(source), config=config)
    return [f"{what}: {m}" for m in matches]


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """The SAM transform, run offline: no managed-policy lookups (the template names none)."""
    from samtranslator.parser.parser import Parser
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    globals_function = sam.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_function:
        globals_function["CodeUri"] = PLACEHOLDER_CODE
    for resource in sam.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            if "CodeUri" in resource.get("Properties", {}):
                resource["Properties"]["CodeUri"] = PLACEHOLDER_CODE
    # The ARN generator reads the region from the environment.
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_REGION", REGION)
    # samtranslator's metrics object complains on exit that nobody published it.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    try:
        return Translator(managed_policy_map={}, sam_parser=Parser()).translate(
            sam_template=sam, parameter_values={}, passthrough_metadata=True
        )
    except InvalidDocumentException as e:
        causes = "\n".join(f"  - {c.message}" for c in e.causes)
        raise TemplateProblem(f"the SAM transform rejects the template:\n{causes}") from e


def check_sam_build(sam: dict[str, Any]) -> list[str]:
    """SAM only: each function is built by cargo-lambda from its binary."""
    problems = []
    for name, binary in BINARIES.items():
        meta = sam["Resources"].get(name, {}).get("Metadata", {})
        if meta.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: BuildMethod must be rust-cargolambda")
        if meta.get("BuildProperties", {}).get("Binary") != binary:
            problems.append(f"{name}: BuildProperties.Binary must be {binary}")
    return problems


def check_deployment(cfn: dict[str, Any]) -> list[str]:
    """What the deployment needs, on a plain CloudFormation template (the SAM expansion here;
    tests/infra/parity.py runs the same on the CDK app's output), under every scenario."""
    problems: list[str] = []
    problems += iam_actions.self_check()
    params = cfn.get("Parameters", {})
    arch = params.get("Architecture", {})
    if arch.get("Default") != "x86_64" or set(arch.get("AllowedValues", [])) != {"x86_64", "arm64"}:
        problems.append("Architecture must be a parameter: x86_64 (default) or arm64")
    log_level = params.get("LogLevel", {})
    if log_level.get("Default") != "INFO" or log_level.get("AllowedValues") != [
        "TRACE", "DEBUG", "INFO", "WARN", "ERROR"
    ]:
        problems.append("LogLevel must allow TRACE/DEBUG/INFO/WARN/ERROR, default INFO")
    for name, default in {
        "LogRetentionDays": 30,
        "EnableTracing": "false",
        "ExistingTableName": "",
        "ExistingBucketName": "",
        "AlarmEmail": "",
    }.items():
        if name not in params or str(params[name].get("Default")) != str(default):
            problems.append(f"parameter {name} with default {default!r} is missing")
    for name in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
        if name not in params:
            problems.append(f"parameter {name} is missing")
    for scenario, overrides in SCENARIOS.items():
        try:
            problems += [f"[{scenario}] {p}" for p in _check_scenario(cfn, overrides)]
        except cfn_model.Unresolvable as e:
            problems.append(f"[{scenario}] cannot evaluate the template: {e}")
    return problems


def _check_scenario(cfn: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    scenario = cfn_model.Scenario(cfn, overrides)
    p = scenario.params
    m = cfn_model.model(cfn, overrides)
    res = scenario.resources()
    tracing = p["EnableTracing"] == "true"
    create_table, create_bucket = p["ExistingTableName"] == "", p["ExistingBucketName"] == ""
    table_name = "{PlexeTable}" if create_table else p["ExistingTableName"]
    bucket_name = "{PlexeBucket}" if create_bucket else p["ExistingBucketName"]

    # Functions: al2023, the chosen CPU, the environment the code reads, JSON logs into their
    # own log group at the chosen level, tracing only when asked for.
    fns = m["functions"]
    need(set(fns) == set(ALL_FUNCTIONS), f"functions {sorted(fns)} != {sorted(ALL_FUNCTIONS)}")
    for name, f in fns.items():
        need(f["Runtime"] == "provided.al2023", f"{name}: Runtime must be provided.al2023")
        need(f["Handler"] == "bootstrap", f"{name}: Handler must be bootstrap")
        need(f["Architectures"] == [p["Architecture"]], f"{name}: Architectures must follow the parameter")
        env = f["Environment"]
        need(EXPECTED_ENV <= set(env), f"{name}: environment lacks {sorted(EXPECTED_ENV - set(env))}")
        need("RUST_LOG" not in env, f"{name}: RUST_LOG is gone (Lambda's LoggingConfig sets the level)")
        need(env.get("PLEXE_BACKEND") == "aws", f"{name}: PLEXE_BACKEND must be aws")
        need(
            env.get("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH") == "true",
            f"{name}: AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH must be \"true\"",
        )
        need(
            env.get("SSL_CERT_FILE") == LAMBDA_CA_BUNDLE,
            f"{name}: SSL_CERT_FILE must be {LAMBDA_CA_BUNDLE}",
        )
        need(env.get("PLEXE_TABLE") == table_name, f"{name}: PLEXE_TABLE is {env.get('PLEXE_TABLE')}, not {table_name}")
        need(env.get("PLEXE_BUCKET") == bucket_name, f"{name}: PLEXE_BUCKET is {env.get('PLEXE_BUCKET')}, not {bucket_name}")
        for var, queue_id in {
            "PLEXE_QUEUE_URL": "JobQueue",
            "PLEXE_DLQ_URL": "JobDeadLetterQueue",
            "PLEXE_TASK_QUEUE_URL": "TaskQueue",
            "PLEXE_TASK_DLQ_URL": "TaskDeadLetterQueue",
        }.items():
            need(env.get(var) == "{" + queue_id + "}", f"{name}: {var} must be {queue_id}'s URL")
        logging_config = f["LoggingConfig"]
        need(logging_config.get("LogFormat") == "JSON", f"{name}: LogFormat must be JSON")
        need(
            logging_config.get("ApplicationLogLevel") == p["LogLevel"],
            f"{name}: ApplicationLogLevel must follow LogLevel",
        )
        group = f"{name}LogGroup"
        need(logging_config.get("LogGroup") == "{" + group + "}", f"{name}: logs must go to {group}")
        need(
            m["log groups"].get(group, {}).get("RetentionInDays") == p["LogRetentionDays"],
            f"{group}: RetentionInDays must follow LogRetentionDays",
        )
        need(
            f["Tracing"] == ("Active" if tracing else "PassThrough"),
            f"{name}: tracing must be Active exactly when EnableTracing is true",
        )
    need(
        set(m["log groups"]) == {f"{n}LogGroup" for n in ALL_FUNCTIONS},
        f"log groups {sorted(m['log groups'])}: one per function expected",
    )
    trainer, tasks = fns.get("TrainerFunction", {}), fns.get("TasksFunction", {})
    need(trainer.get("Timeout") == "900", "TrainerFunction: Timeout must be 900 s")
    need(int(trainer.get("MemorySize", 0)) >= 3008, "TrainerFunction: MemorySize below 3008 MB")
    need(trainer.get("EphemeralStorage") == "10240", "TrainerFunction: 10 GB /tmp expected")
    need(
        (tasks.get("Timeout"), tasks.get("MemorySize"), tasks.get("EphemeralStorage"))
        == ("900", "3008", "10240"),
        "TasksFunction: 900 s, 3008 MB and 10240 MB of /tmp expected",
    )

    # Routes: every endpoint group reaches its function, `$default` catches the rest, and sample
    # requests land where they should under API Gateway's route selection.
    got = {k: v["function"] for k, v in m["routes"].items()}
    for key, fn in EXPECTED_ROUTES.items():
        need(key in got, f"route {key!r} is missing")
        if key in got:
            need(got[key] == fn, f"route {key!r} reaches {got[key]}, not {fn}")
    need(set(got) <= set(EXPECTED_ROUTES), f"unexpected routes: {sorted(set(got) - set(EXPECTED_ROUTES))}")
    need(
        all(v["payload"] == "2.0" for v in m["routes"].values()),
        "every route must use payload format 2.0 (lambda_http reads it)",
    )
    problems += route_rules.check(got, SAMPLE_REQUESTS, "routing")
    need(
        set(m["invokable by the API"]) >= {f for f in got.values() if f},
        f"the API may not invoke {sorted({f for f in got.values() if f} - set(m['invokable by the API']))}",
    )
    stages = list(m["stages"].values())
    need(len(stages) == 1, "exactly one stage ($default) expected")
    for stage in stages:
        need(stage.get("StageName") == "$default" and stage.get("AutoDeploy") == "true", "stage must be $default, auto-deployed")
        need(
            stage.get("DefaultRouteSettings")
            == {
                "ThrottlingRateLimit": p["ThrottlingRateLimit"],
                "ThrottlingBurstLimit": p["ThrottlingBurstLimit"],
            },
            "stage throttling must follow ThrottlingRateLimit / ThrottlingBurstLimit",
        )

    # Queues: SQS triggers each worker one message at a time with partial batch failures;
    # visibility covers 6 × its timeout; SQS gives up only after the app has.
    esms = m["event source mappings"]
    need(set(esms) == {"{" + f + "}" for f in QUEUES}, f"event source mappings {sorted(esms)}: one per queue worker expected")
    concurrency = {"TrainerFunction": p.get("TrainerMaxConcurrency"), "TasksFunction": p.get("TasksMaxConcurrency")}
    for fn, (queue, dlq) in QUEUES.items():
        e = esms.get("{" + fn + "}", {})
        need(e.get("EventSourceArn") == "{" + queue + ".Arn}", f"{fn} must read {queue}")
        need(e.get("BatchSize") == "1", f"{fn}: BatchSize must be 1")
        need(e.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{fn}: ReportBatchItemFailures expected")
        need(
            e.get("ScalingConfig", {}).get("MaximumConcurrency") == concurrency[fn],
            f"{fn}: MaximumConcurrency must follow its parameter",
        )
        need(e.get("Enabled") == "true", f"{fn}: event source mapping must be enabled")
        q = m["queues"].get(queue, {})
        timeout = int(fns.get(fn, {}).get("Timeout", 900))
        need(int(q.get("VisibilityTimeout", 0)) >= 6 * timeout, f"{queue}: visibility < 6 × {fn}'s timeout")
        redrive = q.get("RedrivePolicy", {})
        need(redrive.get("deadLetterTargetArn") == "{" + dlq + ".Arn}", f"{queue}: no redrive to {dlq}")
        receives = int(redrive.get("maxReceiveCount", 0))
        need(
            max_attempts() < receives <= 10,
            f"{queue}: maxReceiveCount {receives} must be above the app's MAX_ATTEMPTS "
            f"({max_attempts()}) and at most 10",
        )
        for qn in (queue, dlq):
            need(m["queues"].get(qn, {}).get("SqsManagedSseEnabled") == "true", f"{qn}: SQS-managed SSE expected")

    # Storage: created unless named; retained; encrypted; private; expiring prefixes.
    if create_table:
        t = m["tables"].get("PlexeTable", {})
        need(t.get("BillingMode") == "PAY_PER_REQUEST", "table must be on-demand")
        need(t.get("TimeToLiveSpecification") == {"AttributeName": "expires_at", "Enabled": "true"}, "table TTL must be on expires_at")
        need(t.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") == "true", "table needs point-in-time recovery")
        need(t.get("SSESpecification", {}).get("SSEEnabled") == "true", "table needs SSE")
        keys = {(k["AttributeName"], k["KeyType"]) for k in t.get("KeySchema", [])}
        need(keys == {("pk", "HASH"), ("sk", "RANGE")}, "table key must be pk/sk")
        need(t.get("DeletionPolicy") == "Retain" and t.get("UpdateReplacePolicy") == "Retain", "table must be retained")
    else:
        need(not m["tables"], "an existing table is named: none may be created")
    if create_bucket:
        b = m["buckets"].get("PlexeBucket", {})
        need("BucketEncryption" in b, "bucket needs default encryption")
        pab = b.get("PublicAccessBlockConfiguration", {})
        need(len(pab) == 4 and all(v == "true" for v in pab.values()), "bucket must block all public access")
        rules = b.get("LifecycleConfiguration", {}).get("Rules", [])
        expiring = {r.get("Prefix"): int(r.get("ExpirationInDays", 0)) for r in rules if r.get("Status") == "Enabled"}
        need(expiring == EXPIRING_PREFIXES, f"bucket lifecycle expiry {expiring} != {EXPIRING_PREFIXES}")
        need(b.get("DeletionPolicy") == "Retain" and b.get("UpdateReplacePolicy") == "Retain", "bucket must be retained")
        policy = m["bucket policies"].get("{PlexeBucket}", [])
        need(
            any(
                st.get("Effect") == "Deny"
                and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for st in policy
            ),
            "bucket policy must deny plain HTTP",
        )
    else:
        need(not m["buckets"] and not m["bucket policies"], "an existing bucket is named: none may be created or changed")

    # Alarms, all to the one topic.
    alarms = list(m["alarms"].values())

    def alarm(namespace: str, metric: str, dimension: str, target: str) -> bool:
        return any(
            a.get("Namespace") == namespace
            and a.get("MetricName") == metric
            and {"Name": dimension, "Value": target} in a.get("Dimensions", [])
            for a in alarms
        )

    for dlq in ("JobDeadLetterQueue", "TaskDeadLetterQueue"):
        need(alarm("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "{" + dlq + ".QueueName}"), f"no alarm on {dlq}'s depth")
    need(alarm("AWS/ApiGateway", "5xx", "ApiId", "{PlexeHttpApi}"), "no alarm on the API's 5xx rate")
    need(alarm("AWS/Lambda", "Errors", "FunctionName", "{TrainerFunction}"), "no alarm on trainer errors")
    for fn in ALL_FUNCTIONS:
        need(alarm("AWS/Lambda", "Throttles", "FunctionName", "{" + fn + "}"), f"no alarm on {fn}'s throttles")
    need(all(a.get("AlarmActions") == ["{AlarmTopic}"] for a in alarms), "every alarm must notify AlarmTopic")
    subscriptions = list(m["sns subscriptions"].values())
    if p["AlarmEmail"]:
        need(
            subscriptions == [{"TopicArn": "{AlarmTopic}", "Protocol": "email", "Endpoint": p["AlarmEmail"]}],
            "AlarmEmail must be subscribed to AlarmTopic",
        )
    else:
        need(not subscriptions, "no subscription without AlarmEmail")

    # Least privilege: exactly the table of tests/infra/iam_actions.py, on this stack's
    # resources; no managed policies; "*" only for X-Ray.
    for fn in ALL_FUNCTIONS:
        role = m["roles"].get(fn, {})
        if "problem" in role:
            problems.append(f"{fn}: {role['problem']}")
            continue
        need(
            role["assumed by"]
            == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": ["sts:AssumeRole"]}],
            f"{fn}: the role must be assumable by Lambda only",
        )
        group = f"{fn}LogGroup"
        held: set[tuple[str, str]] = set()
        for grant in role["grants"]:
            effect, action, resource = grant.split(" ", 2)
            need(effect == "Allow", f"{fn}: unexpected statement {grant}")
            held.add((action, cfn_model.resource_token(resource, fn, group)))
        want = iam_actions.expected_grants(fn, tracing)
        for action, token in sorted(held - want):
            problems.append(f"{fn}: {action} on {token} is not needed (not in tests/infra/iam_actions.py)")
        for action, token in sorted(want - held):
            problems.append(f"{fn}: lacks {action} on {token} (tests/infra/iam_actions.py)")

    outputs = m["outputs"]
    need(outputs.get("TableName") == table_name, "TableName output must follow the table")
    need(outputs.get("BucketName") == bucket_name, "BucketName output must follow the bucket")
    need("ApiUrl" in outputs, "no ApiUrl output")
    for out, queue in {
        "JobQueueUrl": "JobQueue",
        "JobDeadLetterQueueUrl": "JobDeadLetterQueue",
        "TaskQueueUrl": "TaskQueue",
        "TaskDeadLetterQueueUrl": "TaskDeadLetterQueue",
    }.items():
        need(outputs.get(out) == "{" + queue + "}", f"output {out} must be {queue}'s URL")
    return problems


def broken_copies(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mistakes cfn-lint alone has been seen to miss; the expansion must catch each."""
    copies = {}
    t = copy.deepcopy(template)
    t["Resources"]["TrainerFunction"]["Properties"]["Events"]["Jobs"]["Type"] = "SQSQueue"
    copies["event Type SQSQueue"] = t
    t = copy.deepcopy(template)
    jobs = t["Resources"]["TrainerFunction"]["Properties"]["Events"]["Jobs"]["Properties"]
    jobs["FunctionResponseTypes"] = "ReportBatchItemFailures"
    copies["FunctionResponseTypes as a string"] = t
    return copies


def wrong_deployments(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Templates that expand fine but deploy the wrong thing; the deployment checks must
    reject each."""
    copies = {}
    t = copy.deepcopy(template)
    statements = t["Resources"]["KeysFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[1]["Action"].append("dynamodb:Scan")
    copies["an IAM action beyond the table"] = t
    t = copy.deepcopy(template)
    statements = t["Resources"]["TrainerFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[3]["Action"] = ["s3:PutObject"]
    copies["the trainer unable to delete its artifacts"] = t
    t = copy.deepcopy(template)
    t["Resources"]["JobQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = max_attempts()
    copies["maxReceiveCount at the app's attempt limit"] = t
    t = copy.deepcopy(template)
    del t["Resources"]["KeysFunction"]["Properties"]["Events"]["Default"]
    copies["no $default route"] = t
    t = copy.deepcopy(template)
    events = t["Resources"]["InferenceFunction"]["Properties"]["Events"]
    events["PredictionJobsProxy"]["Properties"]["Path"] = "/models/{model_name}/{proxy+}"
    copies["a prediction-jobs route that does not outrank /models/{proxy+}"] = t
    t = copy.deepcopy(template)
    t["Globals"]["Function"]["Environment"]["Variables"]["PLEXE_TABLE"] = {"Ref": "PlexeTable"}
    copies["PLEXE_TABLE ignoring ExistingTableName"] = t
    return copies


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "infra" / "template.yaml"
    problems: list[str] = []
    try:
        sam = load_template(path)
        problems += lint(path, "cfn-lint (SAM template)")
        cfn = expand(sam)
        problems += lint(cfn, "cfn-lint (expanded by samtranslator)")
        problems += check_sam_build(sam)
        problems += check_deployment(cfn)
        for mistake, broken in broken_copies(sam).items():
            try:
                expand(broken)
                problems.append(f"self-check: the expansion accepted a template with {mistake}")
            except TemplateProblem:
                pass
        for mistake, wrong in wrong_deployments(sam).items():
            if not check_deployment(expand(wrong)):
                problems.append(f"self-check: the deployment checks accepted {mistake}")
    except TemplateProblem as e:
        problems.append(str(e))
    if problems:
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    n_res = len(cfn["Resources"])
    print(
        f"{path}: cfn-lint 0 errors 0 warnings; expanded by samtranslator into {n_res} "
        f"resources, cfn-lint 0 errors 0 warnings; deployment checks passed under "
        f"{len(SCENARIOS)} parameter sets and rejected {len(wrong_deployments(sam))} wrong copies"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
