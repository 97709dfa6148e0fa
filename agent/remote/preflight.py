"""`smdiag doctor --remote`: before a managed job spends money, what would refuse it or make it fail at once.

The request is checked before any AWS call (`validate`). `run_preflight` asks STS who the caller is (no
answer: AwsUnavailable, exit 1), then reads the rest concurrently under one Deadline (agent.remote.preflight_aws):
the SageMaker quotas of the instance type and what running training jobs use of them, the execution role and
its trust policy, the default bucket, the framework images' accounts. Turning what was read into rows,
problems and a verdict is pure (`checks`); a source the caller may not read is a row "unknown: needs
<action>", never a failure of the whole. But a preflight that could not read what decides (the quota of the
--instance-type asked for, or every check) is no "ready": not healthy (exit 1), its verdict naming what could
not be read and why (`undecided`). STS gets at most half the budget, so a slow STS leaves the rest time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass

from agent.errors import BadInput
from agent.remote.aws import check_region
from agent.style import Style, command_lines, problem_lines

PREFLIGHT_BUDGET_S = 4.0
"""Seconds all AWS reads of one preflight share (the answer the issue asks for is within 5 s)."""
QUOTA_NAMES = {"training": "{type} for training job usage", "endpoint": "{type} for endpoint usage"}
"""Service Quotas' names of SageMaker's per-instance-type quotas (service code `sagemaker`)."""
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
CHECK_NAMES = {
    "caller": "AWS caller",
    "instance_type": "instance type",
    "training_quota": "training quota",
    "endpoint_quota": "endpoint quota",
    "role": "execution role",
    "bucket": "default bucket",
    "image": "image",
}
"""What a person reads for each check id (`--json` keeps the ids)."""

_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9]+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]{1,64})")
_ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9]+(?:[._/-]+[a-z0-9]+)*)(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
_ANY_IMAGE = re.compile(
    r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::\d+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)


@dataclass(frozen=True)
class Request:
    """What to check: each None is a check not asked for (the role: the session's own, when it is a role)."""

    instance_type: str | None = None
    role: str | None = None
    image: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Check:
    """One row: `state` ok, problem (with its fix), unknown (could not be read: `text` says what it needs),
    note (worth knowing, not a problem) or na (not asked for)."""

    check: str
    state: str
    text: str
    fix: str | None = None
    commands: tuple[str, ...] = ()
    error: str | None = None
    """Why a source could not be read, as AWS said it (agent.remote.aws.why_not)."""


@dataclass(frozen=True)
class Unread:
    """A source that could not be read: the IAM action it needed, and why (one line)."""

    action: str
    why: str
    denied: bool


def validate(request: Request) -> Request:
    """The request, or BadInput naming what is wrong and the fix, before any AWS call. Pure."""
    kind = request.instance_type
    if kind is not None and not _INSTANCE_TYPE.fullmatch(kind):
        fix = "local mode needs no quota: plain `smdiag doctor` checks it" if kind.startswith("local") else (
            "give a SageMaker instance type, e.g. --instance-type ml.m5.xlarge")  # fmt: skip
        raise BadInput(f"--instance-type {kind!r} is not a SageMaker instance type (ml.<family>.<size>)", fix)
    if request.role is not None and not _ROLE_ARN.fullmatch(request.role):
        raise BadInput(
            f"--role {request.role!r} is not an IAM role ARN",
            "give the role's ARN: arn:aws:iam::<account>:role/<name>",
        )
    if request.image is not None and not (_ECR_IMAGE.fullmatch(request.image) or _ANY_IMAGE.fullmatch(request.image)):
        raise BadInput(
            f"--image {request.image!r} is not an image URI",
            "give the URI SageMaker pulls, e.g. <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>",
        )
    check_region(request.region)
    return request


def role_parts(arn: str) -> tuple[str, str] | None:
    """(account, name) of an IAM role ARN, or of the role behind an STS assumed-role ARN."""
    if found := _ROLE_ARN.fullmatch(arn):
        return found["account"], found["name"]
    if found := re.fullmatch(r"arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([\w+=,.@-]+)/.+", arn):
        return found[1], found[2]
    return None


def default_bucket(region: str, account: str) -> str:
    """The bucket both SDKs use when none is given."""
    return f"sagemaker-{region}-{account}"


def quota_names(instance_type: str) -> dict[str, str]:
    return {kind: name.format(type=instance_type) for kind, name in QUOTA_NAMES.items()}


def registries(configs: list[dict]) -> Iterator[dict]:
    """Every `registries` mapping (region: account holding the images there) in the SDK's image_uri_config
    documents, however deep each framework nests them (versions, processors, scopes). Pure."""
    pending: list = list(configs)
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("registries"), dict):
                yield node["registries"]
            pending += [value for key, value in node.items() if key != "registries"]
        elif isinstance(node, list):
            pending += node


def framework_accounts(configs: list[dict]) -> dict[str, set[str]]:
    """Each account holding SageMaker framework images, with the regions whose images it holds. Pure."""
    serves: dict[str, set[str]] = {}
    for mapping in registries(configs):
        for region, account in mapping.items():
            serves.setdefault(str(account), set()).add(region)
    return serves


def region_equivalents(configs: list[dict], account: str, source: str, target: str) -> set[str]:
    """The accounts that hold, in `target`, the images `account` holds in `source`. Pure."""
    return {str(m[target]) for m in registries(configs) if m.get(source) == account and target in m}


def trusts_sagemaker(document: Mapping | str | None) -> tuple[bool, bool]:
    """(SageMaker may assume the role, only under a condition) from a trust policy. Pure."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False, False
    statements = (document or {}).get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    allowed = conditional = False
    for statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(re.fullmatch(re.escape(a).replace(r"\*", ".*"), "sts:AssumeRole", re.I) for a in actions):
            continue
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if principal != "*" and SAGEMAKER_PRINCIPAL not in services:
            continue
        if statement.get("Effect") == "Deny":
            return False, False
        allowed = True
        conditional = conditional or bool(statement.get("Condition"))
    return allowed, conditional


def instances_in_use(jobs: list[dict], instance_type: str) -> int:
    """Instances of `instance_type` the given DescribeTrainingJob answers hold (heterogeneous clusters'
    instance groups counted). Pure."""
    used = 0
    for job in jobs:
        config = job.get("ResourceConfig") or {}
        if config.get("InstanceType") == instance_type:
            used += int(config.get("InstanceCount") or 0)
        used += sum(int(g.get("InstanceCount") or 0) for g in config.get("InstanceGroups") or []
                    if g.get("InstanceType") == instance_type)  # fmt: skip
    return used


def unknown_row(check: str, unread: Unread, what: str = "") -> Check:
    reason = f"needs {unread.action}" if unread.denied else unread.why
    return Check(check, "unknown", f"unknown: {reason}" + (f" ({what})" if what else ""), error=unread.why)


# ---------------------------------------------------------------------------------------------- verdicts


def checks(request: Request, read: dict) -> list[Check]:
    """Every row, from what was read (`read`: agent.remote.preflight_aws.read_all's answer). Pure."""
    caller = Check("caller", "ok", f"{read['caller']} (account {read['account']}, region {read['region']})")
    rows = [caller, *_instance_rows(request.instance_type, read)]
    rows.append(_role_row(read))
    rows.append(_bucket_row(read))
    rows.append(_image_row(request.image, read))
    return rows


def _instance_rows(instance_type: str | None, read: dict) -> list[Check]:
    if instance_type is None:
        why = "not checked: give --instance-type ml.<family>.<size>"
        return [Check(check, "na", why) for check in ("instance_type", "training_quota", "endpoint_quota")]
    region, names, quotas = read["region"], quota_names(instance_type), read["quotas"]
    if isinstance(quotas, Unread):
        return [unknown_row(check, quotas) for check in ("instance_type", "training_quota", "endpoint_quota")]
    training, endpoint = quotas.get(names["training"]), quotas.get(names["endpoint"])
    if training is None and endpoint is None:
        return [
            Check(
                "instance_type",
                "problem",
                f"{instance_type} is not offered by SageMaker in {region}: it has no quota named "
                f"'{names['training']}' there, so no quota request can make it run",
                f"choose another instance type, or a region that offers {instance_type}",
            ),
            Check("training_quota", "na", "no such quota in this region"),
            Check("endpoint_quota", "na", "no such quota in this region"),
        ]
    offered = ", ".join(kind for kind, quota in (("training", training), ("endpoints", endpoint)) if quota)
    rows = [Check("instance_type", "ok", f"{instance_type} is offered in {region} ({offered})")]
    rows.append(_training_quota_row(training, names["training"], read) if training else Check(
        "training_quota", "problem", f"no quota named '{names['training']}' in {region}: {instance_type} "
        "is not offered for training jobs there", "choose another instance type for training"))  # fmt: skip
    if endpoint is None:
        rows.append(Check("endpoint_quota", "note", f"not offered for endpoints in {region}"))
    elif isinstance(endpoint["Value"], Unread):
        rows.append(unknown_row("endpoint_quota", endpoint["Value"], f"default {endpoint['Default']:g} instances"))
    elif endpoint["Value"] <= 0:
        text = f"'{names['endpoint']}' is 0 instances: deploying to {instance_type} would be refused"
        rows.append(Check("endpoint_quota", "note", text, commands=(_increase_command(endpoint, region),)))
    else:
        rows.append(Check("endpoint_quota", "ok", f"'{names['endpoint']}' is {endpoint['Value']:g} instances"))
    return rows


def _training_quota_row(quota: dict, name: str, read: dict) -> Check:
    value, region = quota["Value"], read["region"]
    if isinstance(value, Unread):
        return unknown_row("training_quota", value, f"'{name}', default {quota['Default']:g} instances")
    command = _increase_command(quota, region)
    if value <= 0:
        return Check(
            "training_quota",
            "problem",
            f"'{name}' is 0 instances in {region}: CreateTrainingJob will be refused with ResourceLimitExceeded",
            f"request an increase of '{name}' (Service Quotas console, Amazon SageMaker), or use an instance "
            "type whose quota is above 0",
            (command,),
        )
    running = read["running"]
    if isinstance(running, Unread):
        return unknown_row("training_quota", running, f"'{name}' is {value:g} instances; its use by running jobs")
    used, jobs, complete = running["used"], running["jobs"], running["complete"]
    at_least = "" if complete else "at least "
    usage = f"{at_least}{used} in use by {len(jobs)} running training job{'' if len(jobs) == 1 else 's'}"
    if jobs:
        usage += f" ({', '.join(jobs[:3])}{', ...' if len(jobs) > 3 else ''})"
    if used >= value:
        return Check(
            "training_quota",
            "problem",
            f"'{name}' is {value:g} instances, {usage}: a new job on it is refused with ResourceLimitExceeded "
            "until one ends",
            "wait for a running job to end or stop one, run fewer jobs in parallel (a tuner's max_parallel_jobs), "
            f"or request an increase of '{name}'",
            (command,),
        )
    return Check("training_quota", "ok", f"'{name}' is {value:g} instances, {usage}")


def _increase_command(quota: dict, region: str) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code "
        f"{quota['QuotaCode']} --desired-value <instances> --region {region}"
    )


def _role_row(read: dict) -> Check:
    found = read["role"]
    if found is None:
        return Check("role", "na", "not checked: give --role arn:aws:iam::<account>:role/<name>")
    if isinstance(found, Unread):
        return unknown_row("role", found)
    asked = found["asked"]
    if found.get("other_account"):
        who = asked or "this session's role"
        return Check(
            "role",
            "problem",
            f"{who} is in account {found['other_account']}, the caller in "
            f"{read['account']}: SageMaker takes an execution role of the caller's own account only (iam:PassRole)",
            f"give a role of account {read['account']}",
        )
    if found.get("missing"):
        return Check(
            "role",
            "problem",
            f"{asked} does not exist: the Create call is refused",
            "create an execution role for SageMaker (IAM console: Create role, AWS service, SageMaker), or give "
            "the ARN of an existing one",
        )
    if asked and found["arn"] != asked:
        return Check("role", "problem", f"{asked} does not exist: the role of that name is {found['arn']}",
                     f"give --role {found['arn']}")  # fmt: skip
    label = found["arn"] + ("" if asked else " (this session's role)")
    allowed, conditional = trusts_sagemaker(found["trust"])
    if not allowed and not asked:
        return Check("role", "note", f"{label} does not let {SAGEMAKER_PRINCIPAL} assume it: jobs need another "
                     "role (role=... in the SDK); check that one with --role ARN")  # fmt: skip
    if not allowed:
        document = json.dumps(_trust_with_sagemaker(found["trust"]), separators=(",", ":"))
        return Check(
            "role",
            "problem",
            f"{label} does not let {SAGEMAKER_PRINCIPAL} assume it: SageMaker cannot run jobs with it",
            f"add a statement to the role's trust policy: Allow, Principal Service {SAGEMAKER_PRINCIPAL}, "
            "Action sts:AssumeRole (IAM console: the role, Trust relationships)",
            (f"aws iam update-assume-role-policy --role-name {found['name']} --policy-document '{document}'",),
        )
    condition = " under a condition: check it holds for SageMaker" if conditional else ""
    return Check("role", "ok", f"{label} exists and {SAGEMAKER_PRINCIPAL} may assume it{condition}")


def _trust_with_sagemaker(document: Mapping | str | None) -> dict:
    """The trust policy `document` (IAM's answer: a mapping, or its JSON text) with a statement letting
    SageMaker assume the role added. Pure."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = None
    document = dict(document if isinstance(document, Mapping) else {"Version": "2012-10-17"})
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else list(statements)
    allow = {"Effect": "Allow", "Principal": {"Service": SAGEMAKER_PRINCIPAL}, "Action": "sts:AssumeRole"}
    return {**document, "Statement": [*statements, allow]}


def _bucket_row(read: dict) -> Check:
    found, region = read["bucket"], read["region"]
    if isinstance(found, Unread):
        return unknown_row("bucket", found, f"{default_bucket(region, read['account'])}, or another account owns it")
    name = found["name"]
    if not found["exists"]:
        return Check("bucket", "ok", f"{name} does not exist yet: the SDK creates it in {region} at its first upload")
    where = found["region"]
    if where and where != region:
        return Check(
            "bucket",
            "problem",
            f"{name} is in {where}, not {region}: jobs in {region} cannot read their inputs or code from it",
            f"give the SDK a bucket of {region}: Session(default_bucket=...), or SageMaker.PythonSDK.Modules."
            "Session.DefaultS3Bucket in the SageMaker config",
        )
    return Check("bucket", "ok", f"{name} in {where or 'a region S3 did not name'}")


def _image_row(image: str | None, read: dict) -> Check:
    if image is None:
        return Check("image", "na", "not checked: give --image <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>")
    ecr = _ECR_IMAGE.fullmatch(image)
    if ecr is None:
        return Check("image", "note", f"{image} is not in ECR: SageMaker pulls other registries' images only "
                     "from a registry in the job's VPC (TrainingImageConfig, RepositoryAccessMode Vpc)")  # fmt: skip
    account, where, region, configs = ecr["account"], ecr["region"], read["region"], read["image_configs"]
    if where != region:
        others = region_equivalents(configs or [], account, where, region)
        copy = image.replace(f"{account}.dkr.ecr.{where}.", f"{min(others) if len(others) == 1 else '<account>'}"
                             f".dkr.ecr.{region}.", 1)  # fmt: skip
        return Check(
            "image",
            "problem",
            f"{image} is in ECR of {where}, jobs run in {region}: SageMaker pulls only from the job's region",
            f"use the image's copy in {region}, {copy}, or run the job in {where}",
        )
    if account == read["account"]:
        return Check("image", "ok", f"in this account's ECR in {region}")
    if configs is None:
        return Check("image", "unknown", f"unknown: whether account {account} holds SageMaker framework images "
                     "(no SageMaker SDK in smdiag's interpreter to read image_uri_config from)")  # fmt: skip
    serves = framework_accounts(configs)
    if region in serves.get(account, set()):
        return Check("image", "ok", f"a SageMaker framework image account of {region} ({account})")
    if account in serves:
        mine = sorted(region_equivalents(configs, account, sorted(serves[account])[0], region))
        return Check(
            "image",
            "problem",
            f"account {account} holds SageMaker framework images for other regions, not {region}",
            f"use {region}'s image account{' ' + ', '.join(mine) if mine else ''} (sagemaker.image_uris.retrieve "
            f"with region='{region}' names the URI)",
        )
    return Check("image", "note", f"in account {account}'s ECR, not this one's: its repository policy must let "
                 f"account {read['account']} pull (ecr:BatchGetImage)")  # fmt: skip


# ---------------------------------------------------------------------------------------------- report


def run_preflight(request: Request, budget_s: float = PREFLIGHT_BUDGET_S) -> dict:
    """Validate, read (AwsUnavailable when AWS does not answer at all), and judge: the report `--json` prints."""
    from agent.remote import preflight_aws

    request = validate(request)
    read = preflight_aws.read_all(request, budget_s)
    rows = checks(request, read)
    problems = [row for row in rows if row.state == "problem"]
    unread = undecided(request, rows)
    return {
        "healthy": not problems and not unread,
        "region": read["region"],
        "account": read["account"],
        "request": asdict(request),
        "checks": [asdict(row) for row in rows],
        "problems": [asdict(row) for row in problems],
        "unknown": [row.check for row in rows if row.state == "unknown"],
        "undecided": [asdict(row) for row in unread],
        "seconds": read["seconds"],
    }


def undecided(request: Request, rows: list[Check]) -> list[Check]:
    """The unknown rows that leave no verdict (the preflight is then not healthy): every check asked for, when
    none could be read, else the instance type's and its training quota's when --instance-type was given (what
    the user asked about). Pure."""
    unknown = [row for row in rows if row.state == "unknown"]
    asked = [row for row in rows if row.check != "caller" and row.state != "na"]
    if asked and len(unknown) == len(asked):
        return unknown
    if request.instance_type:
        return [row for row in unknown if row.check in ("instance_type", "training_quota")]
    return []


def format_preflight(report: dict, style: Style) -> str:
    """doctor's layout: a row per check, each problem with its fix and commands, notes' commands, the verdict."""
    rows = report["checks"]
    width = max(len(CHECK_NAMES[row["check"]]) for row in rows)
    lines = [f"{_mark(row['state'], style)} {CHECK_NAMES[row['check']]:<{width}}  {row['text']}" for row in rows]
    for row in rows:
        name = CHECK_NAMES[row["check"]]
        if row["state"] == "problem":
            lines += ["", *problem_lines(name, {**row, "problem": row["text"]}, style)]
        elif row["state"] == "note" and row["commands"]:
            lines += ["", f"{_mark('note', style)} {name}: {row['text']}", *command_lines(row["commands"], style)]
    return "\n".join([*lines, "", verdict_line(report, style)])


def verdict_line(report: dict, style: Style) -> str:
    on = f" on {report['request']['instance_type']}" if report["request"]["instance_type"] else ""
    count, unknown = len(report["problems"]), report["unknown"]
    if count:
        line = (
            f"not ready for managed jobs{on} in {report['region']}: {count} problem{'s' if count > 1 else ''} — fix "
            f"{'it' if count == 1 else 'them'} as shown above, then run `smdiag doctor --remote` again"
        )
        return style.verdict(line, ready=False)
    if report.get("undecided"):
        return style.verdict(f"cannot tell whether managed jobs{on} in {report['region']} would run: "
                             f"{_unread_reasons(report['undecided'])}", ready=False)  # fmt: skip
    line = f"ready for managed jobs{on} in {report['region']}, as far as smdiag could read"
    if unknown:
        names = ", ".join(CHECK_NAMES[check] for check in unknown)
        line += f" ({len(unknown)} check{'s' if len(unknown) > 1 else ''} unknown: {names})"
    return style.verdict(line, ready=True)


def _unread_reasons(rows: list[dict]) -> str:
    """ "instance type, training quota not read (needs servicequotas:...)", the checks grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for row in rows:
        reason = row["text"].removeprefix("unknown: ")
        by_reason.setdefault(reason, []).append(CHECK_NAMES[row["check"]])
    return "; ".join(f"{', '.join(names)} not read ({reason})" for reason, names in by_reason.items())


def _mark(state: str, style: Style) -> str:
    """doctor's marks (a row that could not be read "??"); a note's is a next step's, "->"."""
    return style.mark({"note": "next"}.get(state, state))
