"""A plain CloudFormation template (SAM after samtranslator's expansion, or `cdk synth`'s
output) reduced to what the deployment is, for one set of parameter values, so that two
templates written differently compare equal when they deploy the same thing.

`resolve()` evaluates the conditions, drops resources whose condition is false, and turns
every intrinsic function into a string: `Ref` of a parameter into its value, `Ref X` into
"{X}", `Fn::GetAtt [X, A]` into "{X.A}", pseudo parameters into "{AWS::Region}" and the like;
`Fn::Sub`, `Fn::Join`, `Fn::If`, `Fn::Select`, `Fn::Split` are evaluated. Scalars become
strings (5400 and "5400" are the same value to CloudFormation), lists are sorted (no list
compared here has a meaningful order). `model()` then extracts the parts the brief names:
functions, routes, stage, table, bucket and its policy, queues, alarms, event source mappings,
log groups, SNS, IAM grants per function, parameters, outputs.
"""

from __future__ import annotations

import json
import re
from typing import Any

NOVALUE = object()

# Resource types whose number must be the same in both templates. The API's routes and
# integrations (SAM writes them into the API's OpenAPI body, CDK as resources), the Lambda
# invoke permissions (one per event in SAM, one per route in CDK) and CDK's own bookkeeping
# differ by construction and are compared through the route table instead.
UNCOUNTED_TYPES = {
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::Lambda::Permission",
    "AWS::CDK::Metadata",
}
# CDK's bootstrap check, not part of the deployment.
IGNORED_PARAMETERS = {"BootstrapVersion"}


class Unresolvable(Exception):
    pass


def scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def canonical(v: Any) -> Any:
    """Scalars as strings, lists sorted by their JSON, recursively."""
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        items = [canonical(x) for x in v]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    if v is None:
        return None
    return scalar(v)


class Scenario:
    """One deployment of `template`: parameter defaults overridden by `overrides`."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, str]):
        self.template = template
        self.params: dict[str, str] = {}
        for name, p in template.get("Parameters", {}).items():
            if name in overrides:
                self.params[name] = overrides[name]
            elif "Default" in p:
                self.params[name] = scalar(p["Default"])
        unknown = set(overrides) - set(template.get("Parameters", {}))
        if unknown:
            raise Unresolvable(f"no such parameters: {sorted(unknown)}")
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._cond(self.template["Conditions"][name])
        return self._conditions[name]

    def _cond(self, expr: Any) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            (fn, arg), = expr.items()
            if fn == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return scalar(a) == scalar(b)
            if fn == "Fn::Not":
                return not self._cond(arg[0])
            if fn == "Fn::And":
                return all(self._cond(x) for x in arg)
            if fn == "Fn::Or":
                return any(self._cond(x) for x in arg)
            if fn == "Condition":
                return self.condition(arg)
        raise Unresolvable(f"condition {expr!r}")

    def exists(self, logical_id: str) -> bool:
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            return False
        return "Condition" not in resource or self.condition(resource["Condition"])

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NOVALUE
        if name.startswith("AWS::"):
            return "{" + name + "}"
        if name in self.params:
            return self.params[name]
        if name in self.template["Resources"]:
            if not self.exists(name):
                raise Unresolvable(f"Ref to {name}, which this scenario does not create")
            return "{" + name + "}"
        raise Unresolvable(f"Ref to unknown {name}")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return scalar(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                if not self.exists(logical):
                    raise Unresolvable(f"GetAtt of {logical}, which is not created")
                return "{" + logical + "." + attr + "}"
            return scalar(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def value(self, v: Any) -> Any:
        """`v` with every intrinsic function evaluated (NoValue removed)."""
        if isinstance(v, list):
            out = [self.value(x) for x in v]
            return [x for x in out if x is not NOVALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (fn, arg), = v.items()
            if fn == "Ref":
                return self._ref(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                if not self.exists(logical):
                    raise Unresolvable(f"GetAtt of {logical}, which is not created")
                return "{" + logical + "." + scalar(self.value(attr)) + "}"
            if fn == "Fn::Sub":
                if isinstance(arg, str):
                    return self._sub(arg, {})
                text, variables = arg
                return self._sub(text, {k: self.value(x) for k, x in variables.items()})
            if fn == "Fn::Join":
                sep, parts = arg
                parts = self.value(parts)
                return scalar(sep).join(scalar(p) for p in parts)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if fn == "Fn::Select":
                index, items = arg
                return self.value(items)[int(scalar(self.value(index)))]
            if fn == "Fn::Split":
                sep, text = arg
                return scalar(self.value(text)).split(sep)
            if fn.startswith("Fn::"):
                raise Unresolvable(f"{fn} is not evaluated here")
        out = {k: self.value(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x is not NOVALUE}

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this scenario creates, properties evaluated."""
        out = {}
        for logical, r in self.template["Resources"].items():
            if not self.exists(logical):
                continue
            out[logical] = {
                "Type": r["Type"],
                "Properties": self.value(r.get("Properties", {})),
                "DeletionPolicy": r.get("DeletionPolicy", "Delete"),
                "UpdateReplacePolicy": r.get("UpdateReplacePolicy", "Delete"),
            }
        return out


def _function_of(text: str, functions: set[str]) -> str | None:
    found = {m for m in re.findall(r"\{(\w+)\.Arn\}", text) if m in functions}
    return found.pop() if len(found) == 1 else None


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def routes(res: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Route key → (function, payload format version), from an OpenAPI body (SAM) or from
    AWS::ApiGatewayV2::Route + Integration resources (CDK)."""
    functions = {k for k, r in res.items() if r["Type"] == "AWS::Lambda::Function"}
    out: dict[str, Any] = {}
    for r in res.values():
        if r["Type"] != "AWS::ApiGatewayV2::Api":
            continue
        for path, methods in r["Properties"].get("Body", {}).get("paths", {}).items():
            for method, op in methods.items():
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                integration = op.get("x-amazon-apigateway-integration", {})
                key = "$default" if op.get("isDefaultRoute") else f"{verb} {path}"
                out[key] = {
                    "function": _function_of(json.dumps(integration.get("uri")), functions),
                    "payload": scalar(integration.get("payloadFormatVersion")),
                }
    for r in res.values():
        if r["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        p = r["Properties"]
        target = scalar(p.get("Target", ""))
        m = re.fullmatch(r"integrations/\{(\w+)\}", target)
        integration = res[m.group(1)]["Properties"] if m and m.group(1) in res else {}
        out[p["RouteKey"]] = {
            "function": _function_of(json.dumps(integration.get("IntegrationUri")), functions),
            "payload": scalar(integration.get("PayloadFormatVersion")),
        }
    return out


def grants(res: dict[str, dict[str, Any]], role: str) -> set[tuple[str, str, str]]:
    """(Effect, action, resource) of everything the role is granted: its inline policies,
    AWS::IAM::Policy resources attached to it, and managed policies ("managed", arn)."""
    out: set[tuple[str, str, str]] = set()
    docs = [p["PolicyDocument"] for p in res[role]["Properties"].get("Policies", [])]
    for r in res.values():
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            if "{" + role + "}" in [scalar(x) for x in r["Properties"].get("Roles", [])]:
                docs.append(r["Properties"]["PolicyDocument"])
    for arn in res[role]["Properties"].get("ManagedPolicyArns", []):
        out.add(("Allow", "managed-policy", scalar(arn)))
    for doc in docs:
        for st in _as_list(doc["Statement"]):
            if "NotAction" in st or "NotResource" in st or "Condition" in st:
                out.add((st["Effect"], "unsupported statement", json.dumps(st, sort_keys=True)))
                continue
            for action in _as_list(st["Action"]):
                for target in _as_list(st["Resource"]):
                    out.add((st["Effect"], scalar(action), scalar(target)))
    return out


def _principal(p: Any) -> Any:
    return {"AWS": "*"} if p == "*" else p


def _policy_doc(doc: dict[str, Any]) -> Any:
    """A policy document's statements without Sids, principals and actions in one form."""
    out = []
    for st in _as_list(doc.get("Statement", [])):
        st = {k: v for k, v in st.items() if k != "Sid"}
        if "Principal" in st:
            st["Principal"] = _principal(st["Principal"])
        if "Action" in st:
            st["Action"] = _as_list(st["Action"])
        if "Resource" in st:
            st["Resource"] = _as_list(st["Resource"])
        out.append(st)
    return canonical(out)


def _of_type(res: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in res.items() if r["Type"] == kind}


def _props(r: dict[str, Any], drop: tuple[str, ...] = ()) -> Any:
    p = {k: v for k, v in r["Properties"].items() if k not in drop and k != "Tags"}
    return canonical(p)


def model(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    scenario = Scenario(template, overrides)
    res = scenario.resources()
    functions = _of_type(res, "AWS::Lambda::Function")
    m: dict[str, Any] = {}

    m["resource counts"] = canonical(
        {
            t: sum(1 for r in res.values() if r["Type"] == t)
            for t in {r["Type"] for r in res.values()} - UNCOUNTED_TYPES
        }
    )
    m["parameters"] = {
        name: canonical(
            {k: v for k, v in p.items() if k in ("Type", "Default", "AllowedValues", "MinValue", "MaxValue")}
        )
        for name, p in template.get("Parameters", {}).items()
        if name not in IGNORED_PARAMETERS
    }

    m["functions"] = {}
    for name, f in functions.items():
        p = f["Properties"]
        m["functions"][name] = canonical(
            {
                "Description": p.get("Description"),
                "Runtime": p.get("Runtime"),
                "Handler": p.get("Handler"),
                "Architectures": p.get("Architectures", ["x86_64"]),
                "MemorySize": p.get("MemorySize", 128),
                "Timeout": p.get("Timeout", 3),
                "EphemeralStorage": p.get("EphemeralStorage", {}).get("Size", 512),
                "Environment": p.get("Environment", {}).get("Variables", {}),
                "LoggingConfig": p.get("LoggingConfig", {}),
                "Tracing": p.get("TracingConfig", {}).get("Mode", "PassThrough"),
                "Role": p.get("Role"),
                "ReservedConcurrentExecutions": p.get("ReservedConcurrentExecutions"),
            }
        )

    m["routes"] = canonical(routes(res))
    apis = _of_type(res, "AWS::ApiGatewayV2::Api")
    m["apis"] = sorted(apis)
    m["stages"] = {
        k: _props(r, drop=("Description",)) for k, r in _of_type(res, "AWS::ApiGatewayV2::Stage").items()
    }
    # Every function a route reaches may be invoked by the API.
    invokable = set()
    for r in _of_type(res, "AWS::Lambda::Permission").values():
        p = r["Properties"]
        if p.get("Principal") == "apigateway.amazonaws.com" and p.get("Action") == "lambda:InvokeFunction":
            if any("{" + api + "}" in scalar(p.get("SourceArn")) for api in apis):
                invokable.add(re.sub(r"^\{(\w+)(\.Arn)?\}$", r"\1", scalar(p["FunctionName"])))
    m["invokable by the API"] = sorted(invokable)

    m["tables"] = {
        k: _props(r) | {"DeletionPolicy": r["DeletionPolicy"], "UpdateReplacePolicy": r["UpdateReplacePolicy"]}
        for k, r in _of_type(res, "AWS::DynamoDB::Table").items()
    }
    m["buckets"] = {
        k: _props(r) | {"DeletionPolicy": r["DeletionPolicy"], "UpdateReplacePolicy": r["UpdateReplacePolicy"]}
        for k, r in _of_type(res, "AWS::S3::Bucket").items()
    }
    m["bucket policies"] = {
        scalar(r["Properties"]["Bucket"]): _policy_doc(r["Properties"]["PolicyDocument"])
        for r in _of_type(res, "AWS::S3::BucketPolicy").values()
    }
    m["queues"] = {
        k: _props(r) | {"DeletionPolicy": r["DeletionPolicy"]}
        for k, r in _of_type(res, "AWS::SQS::Queue").items()
    }
    m["alarms"] = {k: _props(r) for k, r in _of_type(res, "AWS::CloudWatch::Alarm").items()}
    m["event source mappings"] = {
        scalar(r["Properties"]["FunctionName"]): canonical(
            {"Enabled": True} | {k: v for k, v in r["Properties"].items() if k != "FunctionName"}
        )
        for r in _of_type(res, "AWS::Lambda::EventSourceMapping").values()
    }
    m["log groups"] = {
        k: _props(r) | {"DeletionPolicy": r["DeletionPolicy"]}
        for k, r in _of_type(res, "AWS::Logs::LogGroup").items()
    }
    m["sns topics"] = {k: _props(r) for k, r in _of_type(res, "AWS::SNS::Topic").items()}
    m["sns subscriptions"] = {k: _props(r) for k, r in _of_type(res, "AWS::SNS::Subscription").items()}

    m["roles"] = {}
    for name, f in functions.items():
        role = re.fullmatch(r"\{(\w+)\.Arn\}", scalar(f["Properties"].get("Role")))
        if not role or role.group(1) not in res:
            m["roles"][name] = {"problem": f"role {f['Properties'].get('Role')!r} is not in the template"}
            continue
        r = res[role.group(1)]
        m["roles"][name] = {
            "assumed by": _policy_doc(r["Properties"]["AssumeRolePolicyDocument"]),
            "grants": sorted(" ".join(g) for g in grants(res, role.group(1))),
            "permissions boundary": scalar(r["Properties"].get("PermissionsBoundary")),
        }

    m["outputs"] = {
        k: scalar(scenario.value(o["Value"]))
        for k, o in template.get("Outputs", {}).items()
        if "Condition" not in o or scenario.condition(o["Condition"])
    }
    return m


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Where `a` and `b` differ, as readable lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            where = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{where}: only in the second: {json.dumps(b[k], sort_keys=True)[:300]}")
            elif k not in b:
                out.append(f"{where}: only in the first: {json.dumps(a[k], sort_keys=True)[:300]}")
            else:
                out += diff(a[k], b[k], where)
        return out
    if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, str) for x in a + b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        if only_a or only_b:
            return [f"{path}: only in the first {only_a}, only in the second {only_b}"]
        return []
    if a != b:
        return [
            f"{path}: {json.dumps(a, sort_keys=True)[:300]} != {json.dumps(b, sort_keys=True)[:300]}"
        ]
    return []


# ------------------------------------------------------------------ IAM resource tokens


def resource_token(resource: str, function: str, log_group: str | None) -> str:
    """A role's resource ARN (as resolved) as a token of tests/infra/iam_actions.py."""
    if resource == "*":
        return "*"
    if log_group and resource == "{" + log_group + ".Arn}":
        return "own-log-group"
    table = re.fullmatch(
        r"\{PlexeTable\.Arn\}|arn:\{AWS::Partition\}:dynamodb:\{AWS::Region\}:\{AWS::AccountId\}:table/[\w.-]+",
        resource,
    )
    if table:
        return "table"
    bucket = re.fullmatch(r"(\{PlexeBucket\.Arn\}|arn:\{AWS::Partition\}:s3:::[\w.-]+)(/(.*))?", resource)
    if bucket:
        return "bucket" if bucket.group(2) is None else f"objects:{bucket.group(3)}"
    queue = re.fullmatch(r"\{(\w+Queue)\.Arn\}", resource)
    if queue:
        return f"queue:{queue.group(1)}"
    return f"unknown resource {resource} of {function}"
