"""Validates infra/template.yaml offline, without AWS credentials.

1. cfn-lint over the SAM template as written;
2. the SAM transform (samtranslator, the code CloudFormation runs for
   `Transform: AWS::Serverless-2016-10-31`) expands it into plain CloudFormation, and cfn-lint
   checks that: SAM-level mistakes (a bad event `Type`, `Runtime` or `FunctionResponseTypes`)
   only surface here;
3. the expanded template is checked for what the deployment needs (routes to the right
   function, limits, queue timing, least-privilege roles), and a broken copy of the template
   must be rejected, so this step is known to be able to fail.

Any cfn-lint match (error, warning or informational) fails. `sam validate --lint` runs beside
this script (tests/validate_template.sh).

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

HTTP_FUNCTIONS = ("KeysFunction", "DatasetsFunction", "ModelsFunction", "InferenceFunction")
ALL_FUNCTIONS = HTTP_FUNCTIONS + ("TrainerFunction",)
BINARIES = {
    "KeysFunction": "keys",
    "DatasetsFunction": "datasets",
    "ModelsFunction": "models",
    "InferenceFunction": "inference",
    "TrainerFunction": "trainer",
}
# Every route key the API must have, and the function it must reach.
EXPECTED_ROUTES = {}
for prefix in ("", "/v1"):
    EXPECTED_ROUTES.update(
        {
            f"GET {prefix}/me": "KeysFunction",
            f"ANY {prefix}/api-keys": "KeysFunction",
            f"ANY {prefix}/api-keys/{{proxy+}}": "KeysFunction",
            f"GET {prefix}/health": "KeysFunction",
            f"GET {prefix}/openapi.json": "KeysFunction",
            f"ANY {prefix}/datasets": "DatasetsFunction",
            f"ANY {prefix}/datasets/{{proxy+}}": "DatasetsFunction",
            f"ANY {prefix}/models": "ModelsFunction",
            f"ANY {prefix}/models/{{proxy+}}": "ModelsFunction",
            f"POST {prefix}/models/{{model_name}}/{{model_version}}/infer": "InferenceFunction",
            f"POST {prefix}/models/{{model_name}}/{{model_version}}/predictions": "InferenceFunction",
        }
    )
# What the code reads (shared/src/config.rs, the rate-limit middleware, lambda_http, tracing).
EXPECTED_ENV = {
    "PLEXE_BACKEND",
    "PLEXE_TABLE",
    "PLEXE_BUCKET",
    "PLEXE_QUEUE_URL",
    "PLEXE_DLQ_URL",
    "PLEXE_RATE_LIMIT_BASIC",
    "PLEXE_RATE_LIMIT_PRO",
    "PLEXE_BUILD_RATE_LIMIT",
    "PLEXE_CONCURRENT_BUILDS_BASIC",
    "PLEXE_CONCURRENT_BUILDS_PRO",
    "RUST_LOG",
    "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH",
}
# The only actions a function role may be granted beyond the Lambda basics (logs, and the
# SQS event source's receive/delete, which SAM adds as AWS managed policies).
ALLOWED_ACTIONS = {
    "KeysFunction": {"dynamodb:", "s3:GetObject", "s3:PutObject", "s3:ListBucket"},
    "DatasetsFunction": {
        "dynamodb:",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    },
    "ModelsFunction": {
        "dynamodb:",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
    },
    "InferenceFunction": {"dynamodb:", "s3:GetObject", "s3:PutObject", "s3:ListBucket"},
    "TrainerFunction": {
        "dynamodb:",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    },
}
ALLOWED_DYNAMODB = {
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
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


def ref_name(value: Any) -> str | None:
    """The logical id behind {"Ref": X} / {"Fn::GetAtt": [X, ...]}."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def check_deployment(sam: dict[str, Any], cfn: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    res = cfn["Resources"]
    sam_res = sam["Resources"]

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    # Functions: one per binary, built by cargo-lambda, al2023, x86_64 unless arm64 is asked for.
    for name, binary in BINARIES.items():
        f = res.get(name)
        need(f is not None and f["Type"] == "AWS::Lambda::Function", f"{name} is missing")
        if f is None:
            continue
        p = f["Properties"]
        meta = sam_res[name].get("Metadata", {})
        need(meta.get("BuildMethod") == "rust-cargolambda", f"{name}: BuildMethod")
        need(meta.get("BuildProperties", {}).get("Binary") == binary, f"{name}: Binary {binary}")
        need(p.get("Runtime") == "provided.al2023", f"{name}: Runtime")
        arch = p.get("Architectures") or [None]
        arch_param = sam["Parameters"].get(ref_name(arch[0]) or "", {})
        need(
            len(arch) == 1
            and (arch[0] in ("x86_64", "arm64") or arch_param.get("Default") == "x86_64")
            and set(arch_param.get("AllowedValues", ["x86_64"])) <= {"x86_64", "arm64"},
            f"{name}: Architectures must be x86_64 or arm64 (a parameter defaulting to x86_64)",
        )
        env = set(p.get("Environment", {}).get("Variables", {}))
        need(EXPECTED_ENV <= env, f"{name}: environment lacks {sorted(EXPECTED_ENV - env)}")
        variables = p.get("Environment", {}).get("Variables", {})
        need(variables.get("PLEXE_BACKEND") == "aws", f"{name}: PLEXE_BACKEND must be aws")
        need(
            variables.get("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH") == "true",
            f"{name}: AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH must be \"true\"",
        )

    # Routes: every endpoint group reaches its function; the specific inference routes exist
    # beside /models/{proxy+} (API Gateway prefers routes without a greedy variable).
    # SAM writes an explicit HttpApi's routes into its OpenAPI body.
    routes = {}
    paths = res["PlexeHttpApi"]["Properties"].get("Body", {}).get("paths", {})
    for path, methods in paths.items():
        for method, op in methods.items():
            verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            uri = op.get("x-amazon-apigateway-integration", {}).get("uri", {})
            text = json.dumps(uri)
            fns = [f for f in ALL_FUNCTIONS if "${" + f + ".Arn}" in text]
            routes[f"{verb} {path}"] = fns[0] if len(fns) == 1 else None
    for key, fn in EXPECTED_ROUTES.items():
        need(key in routes, f"route {key!r} is missing")
        if key in routes:
            need(routes[key] == fn, f"route {key!r} reaches {routes[key]}, not {fn}")
    need(
        set(routes) == set(EXPECTED_ROUTES),
        f"unexpected routes: {sorted(set(routes) - set(EXPECTED_ROUTES))}",
    )

    # Trainer: 15 minutes, SQS with partial batch failures; queue timing and redrive.
    trainer = res["TrainerFunction"]["Properties"]
    timeout = trainer.get("Timeout", 3)
    need(timeout == 900, "TrainerFunction: Timeout must be 900 s")
    mem = trainer.get("MemorySize")
    default_mem = sam["Parameters"].get(ref_name(mem) or "", {}).get("Default", mem)
    need(int(default_mem) >= 3008, "TrainerFunction: MemorySize below 3008 MB")
    mappings = [r for r in res.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    need(len(mappings) == 1, "exactly one event source mapping (the trainer's) expected")
    for m in mappings:
        mp = m["Properties"]
        need(ref_name(mp["FunctionName"]) == "TrainerFunction", "SQS must trigger the trainer")
        need(ref_name(mp["EventSourceArn"]) == "JobQueue", "trainer must read JobQueue")
        need(
            mp.get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
            "trainer event source needs ReportBatchItemFailures",
        )
    queue = res["JobQueue"]["Properties"]
    need(queue["VisibilityTimeout"] >= 6 * timeout, "JobQueue visibility < 6 × trainer timeout")
    redrive = queue.get("RedrivePolicy", {})
    need(ref_name(redrive.get("deadLetterTargetArn")) == "JobDeadLetterQueue", "no redrive to DLQ")
    need(1 <= int(redrive.get("maxReceiveCount", 0)) <= 10, "maxReceiveCount out of 1..10")

    # Storage.
    table = res["PlexeTable"]["Properties"]
    need(table.get("BillingMode") == "PAY_PER_REQUEST", "table must be on-demand")
    need(
        table.get("TimeToLiveSpecification") == {"AttributeName": "expires_at", "Enabled": True},
        "table TTL must be on expires_at",
    )
    need(
        table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
        is True,
        "table needs point-in-time recovery",
    )
    keys = {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]}
    need(keys == {("pk", "HASH"), ("sk", "RANGE")}, "table key must be pk/sk")
    bucket = res["PlexeBucket"]["Properties"]
    need("BucketEncryption" in bucket, "bucket needs default encryption")
    need(
        all(bucket.get("PublicAccessBlockConfiguration", {}).values())
        and len(bucket.get("PublicAccessBlockConfiguration", {})) == 4,
        "bucket must block all public access",
    )
    rules = bucket.get("LifecycleConfiguration", {}).get("Rules", [])
    need(
        any(r.get("Prefix") == "uploads/" and r.get("ExpirationInDays") for r in rules),
        "bucket needs a lifecycle rule expiring uploads/",
    )
    alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    need(
        any(
            a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and any(
                ref_name(d.get("Value")) == "JobDeadLetterQueue"
                for d in a["Properties"].get("Dimensions", [])
            )
            for a in alarms
        ),
        "no alarm on the DLQ depth",
    )
    need("ApiUrl" in cfn.get("Outputs", {}), "no ApiUrl output")

    # Least privilege: each role's inline statements grant only what its function uses, only on
    # this stack's table, bucket and queue, and never a wildcard action.
    for name in ALL_FUNCTIONS:
        role = res.get(f"{name}Role", {}).get("Properties", {})
        for policy in role.get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                for action in actions:
                    allowed = ALLOWED_ACTIONS[name]
                    ok = action in allowed or (
                        "dynamodb:" in allowed and action in ALLOWED_DYNAMODB
                    )
                    need(ok and "*" not in action, f"{name}: {action} is not needed")
                targets = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                for target in targets:
                    text = json.dumps(target)
                    need(
                        any(x in text for x in ("PlexeTable", "PlexeBucket", "JobQueue")),
                        f"{name}: statement on {text} is not this stack's table/bucket/queue",
                    )
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


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "infra" / "template.yaml"
    problems: list[str] = []
    try:
        sam = load_template(path)
        problems += lint(path, "cfn-lint (SAM template)")
        cfn = expand(sam)
        problems += lint(cfn, "cfn-lint (expanded by samtranslator)")
        problems += check_deployment(sam, cfn)
        for mistake, broken in broken_copies(sam).items():
            try:
                expand(broken)
                problems.append(f"self-check: the expansion accepted a template with {mistake}")
            except TemplateProblem:
                pass
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
        "resources, cfn-lint 0 errors 0 warnings; deployment checks passed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
