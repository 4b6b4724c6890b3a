"""The CDK app deploys the same stack as the SAM template.

Given the SAM template and `cdk synth`'s output, this
1. runs cfn-lint over the CDK output (any error, warning or informational match fails);
2. holds the CDK output to the deployment checks the SAM template passes
   (validate_template.check_deployment: routes, limits, queues, logging, alarms, and each role
   exactly the actions of tests/infra/iam_actions.py);
3. compares the two, expanded SAM against CDK, under each parameter set of
   validate_template.SCENARIOS: functions (runtime, architecture, memory, timeout, /tmp,
   environment, logging, tracing, role), routes and the function each reaches, the stage and
   its throttling, table, bucket and bucket policy, queues and redrive, alarms, event source
   mappings, log groups, SNS, IAM grants per function, parameters, outputs, and the number of
   resources of each type (cfn_model.py says how intrinsics and ids are normalized);
4. proves step 3 can fail: broken copies of the CDK output (a memory size changed, an IAM
   action added, a route pointed elsewhere, a queue's redrive changed, a log retention fixed)
   must each be reported.

Usage: python tests/infra/parity.py infra/template.yaml path/to/cdk.out/plexe.template.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn_model  # noqa: E402
import validate_template  # noqa: E402


def compare(sam_cfn: dict[str, Any], cdk: dict[str, Any]) -> list[str]:
    problems = []
    for scenario, overrides in validate_template.SCENARIOS.items():
        try:
            a = cfn_model.model(sam_cfn, overrides)
            b = cfn_model.model(cdk, overrides)
        except cfn_model.Unresolvable as e:
            problems.append(f"[{scenario}] cannot evaluate a template: {e}")
            continue
        problems += [f"[{scenario}] SAM vs CDK: {d}" for d in cfn_model.diff(a, b)]
    return problems


def _resource(t: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return t["Resources"][logical_id]["Properties"]


def broken_copies(cdk: dict[str, Any]) -> dict[str, dict[str, Any]]:
    copies = {}
    t = copy.deepcopy(cdk)
    _resource(t, "InferenceFunction")["MemorySize"] = 512
    copies["InferenceFunction with 512 MB"] = t
    t = copy.deepcopy(cdk)
    _resource(t, "KeysFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "*"}
    )
    copies["an extra IAM action"] = t
    t = copy.deepcopy(cdk)
    for r in t["Resources"].values():
        if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"]["RouteKey"].startswith(
            "ANY /models/{model_name}/{model_version}/prediction-jobs/"
        ):
            default = next(
                x for x in t["Resources"].values()
                if x["Type"] == "AWS::ApiGatewayV2::Route" and x["Properties"]["RouteKey"] == "$default"
            )
            r["Properties"]["Target"] = default["Properties"]["Target"]
    copies["prediction jobs routed to KeysFunction"] = t
    t = copy.deepcopy(cdk)
    _resource(t, "TaskQueue")["RedrivePolicy"]["maxReceiveCount"] = 3
    copies["TaskQueue redrive after 3 receives"] = t
    t = copy.deepcopy(cdk)
    _resource(t, "TrainerFunctionLogGroup")["RetentionInDays"] = 30
    copies["a log retention that ignores LogRetentionDays"] = t
    t = copy.deepcopy(cdk)
    _resource(t, "TasksFunctionTasks")["BatchSize"] = 10
    copies["TasksFunction taking 10 messages at once"] = t
    return copies


def main() -> int:
    sam_path, cdk_path = Path(sys.argv[1]), Path(sys.argv[2])
    problems: list[str] = []
    cdk = json.loads(cdk_path.read_text())
    problems += validate_template.lint(cdk_path, "cfn-lint (CDK output)")
    problems += [f"CDK: {p}" for p in validate_template.check_deployment(cdk)]
    try:
        sam_cfn = validate_template.expand(validate_template.load_template(sam_path))
    except validate_template.TemplateProblem as e:
        problems.append(f"SAM: {e}")
        sam_cfn = None
    if sam_cfn is not None:
        problems += compare(sam_cfn, cdk)
        for mistake, broken in broken_copies(cdk).items():
            if not compare(sam_cfn, broken):
                problems.append(f"self-check: the parity check accepted a CDK template with {mistake}")
    if problems:
        print(f"CDK app (cdk synth output): {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(
        "CDK app (cdk synth output): cfn-lint 0 errors 0 warnings; deployment checks passed; same stack as "
        f"{sam_path} under {len(validate_template.SCENARIOS)} parameter sets "
        f"({len(cdk['Resources'])} CDK resources); rejected {len(broken_copies(cdk))} broken copies"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
