"""The preflight's reads: STS first (who is asking, and whether AWS answers at all), then every other source at
once, all under one Deadline. Read-only. Each source's answer is plain data, or an Unread naming the IAM action
it lacked (or the silence) — what the pure verdicts in agent.remote.preflight turn into rows."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.log import get_logger
from agent.remote import quotas
from agent.remote.aws import (
    ACCESS_DENIED_CODES,
    AwsUnavailable,
    Deadline,
    client,
    error_code,
    in_parallel,
    is_unavailable,
    why_not,
)
from agent.remote.preflight import Request, Unread, default_bucket, instances_in_use, quota_names, role_parts

log = get_logger("preflight")

MAX_JOBS_DESCRIBED = 40
"""Running training jobs whose ResourceConfig is read (agent.remote.aws.in_parallel); beyond: "at least"."""
CREDENTIALS_REFUSED = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
     "UnrecognizedClientException", "InvalidAccessKeyId", "AccessDenied"}
)  # fmt: skip
"""STS's answers to credentials it does not take (GetCallerIdentity itself needs no permission)."""
IMAGE_CONFIG_DIRS = ("image_uri_config", "core/image_uri_config")
"""Where the SageMaker SDK keeps its framework images' accounts per region: v2, and v3's sagemaker-core."""


class ReadFailed(Exception):
    """A source could not be read: carries the Unread that becomes its row."""

    def __init__(self, unread: Unread) -> None:
        super().__init__(unread.why)
        self.unread = unread


def unread(error: BaseException, action: str) -> Unread:
    code = error_code(error)
    denied = code in ACCESS_DENIED_CODES or code == "403" or "not authorized" in str(error)
    return Unread(action, why_not(error, action), denied)


def call(action: str, method: Callable, **kwargs) -> dict:
    """One AWS call; its failure as ReadFailed naming `action` (an IAM action, "iam:GetRole")."""
    try:
        return method(**kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure of a read becomes its row, never a crash
        raise ReadFailed(unread(exc, action)) from exc


def concurrently(tasks: dict[str, tuple[str, Callable[[], Any]]], deadline: Deadline) -> dict[str, Any]:
    """Run every task (name: (IAM action, function)) at once until the deadline (agent.remote.aws.in_parallel).
    A task that fails, or is still running then, is an Unread."""

    def run(entry: tuple[str, tuple[str, Callable[[], Any]]]) -> Any:
        name, (action, task) = entry
        try:
            return task()
        except ReadFailed as exc:
            return exc.unread
        except Exception as exc:  # noqa: BLE001 - a source's error must become its row, not a traceback
            log.exception("preflight.read_failed", source=name)
            return unread(exc, action)

    silent = f"no answer within the preflight's {deadline.seconds:g} s"
    entries = list(tasks.items())
    answers = in_parallel(run, entries, deadline, late=lambda entry: Unread(entry[1][0], silent, False))
    return {name: answer for (name, _task), answer in zip(entries, answers, strict=True)}


def read_all(request: Request, budget_s: float) -> dict:
    """Everything the verdicts read: region, account, caller, and each source's answer (None: not asked)."""
    started = time.monotonic()
    deadline = Deadline(budget_s)
    region, identity = caller(request.region, deadline)
    account = identity["Account"]
    role = request.role or (identity["Arn"] if ":assumed-role/" in identity["Arn"] else None)
    tasks: dict[str, tuple[str, Callable[[], Any]]] = {
        "bucket": ("s3:ListBucket", lambda: read_bucket(region, account, deadline)),
    }
    if request.instance_type:
        names = quota_names(request.instance_type)
        tasks["quotas"] = (
            "servicequotas:ListAWSDefaultServiceQuotas",
            lambda: read_quotas(region, set(names.values()), deadline),
        )
        tasks["running"] = ("sagemaker:ListTrainingJobs",
                            lambda: read_running(region, request.instance_type, deadline))  # fmt: skip
    if role:
        tasks["role"] = ("iam:GetRole", lambda: read_role(role, bool(request.role), account, region, deadline))
    if request.image:
        tasks["image_configs"] = ("read the SageMaker SDK's image_uri_config", sdk_image_configs)
    answers = concurrently(tasks, deadline)
    configs = answers.get("image_configs")
    return {
        "region": region,
        "account": account,
        "caller": identity["Arn"],
        "quotas": answers.get("quotas"),
        "running": answers.get("running"),
        "role": answers.get("role"),
        "bucket": answers["bucket"],
        "image_configs": None if isinstance(configs, Unread) else configs,
        "seconds": round(time.monotonic() - started, 3),
    }


def caller(region: str | None, deadline: Deadline) -> tuple[str, dict]:
    """(region, GetCallerIdentity's answer); AwsUnavailable when AWS does not answer or refuses the
    credentials themselves (GetCallerIdentity needs no permission). STS gets at most half of what is left:
    a slow STS leaves the other reads time of their own."""
    sts = client("sts", region, deadline, at_most=deadline.left() / 2)
    try:
        identity = sts.get_caller_identity()
    except Exception as exc:  # noqa: BLE001 - any failure here means AWS cannot be asked
        why = why_not(exc, "sts:GetCallerIdentity")
        if is_unavailable(exc):
            raise AwsUnavailable(
                f"AWS does not answer ({why})", "check the network, the proxy or AWS_ENDPOINT_URL, and the region"
            ) from exc
        if error_code(exc) in CREDENTIALS_REFUSED:
            raise AwsUnavailable(f"AWS refuses these credentials ({why})", "renew them, e.g. aws sso login") from exc
        raise AwsUnavailable(f"AWS cannot say who is asking ({why})", "run smdiag doctor --remote again") from exc
    return sts.meta.region_name, identity


def read_quotas(region: str, wanted: set[str], deadline: Deadline) -> dict[str, dict]:
    """The SageMaker quotas named in `wanted` that exist in the region (agent.remote.quotas.find), each with
    its applied value ("Value": a number, or the Unread that kept it; a quota never changed has its default)."""
    service = client("service-quotas", region, deadline)
    try:
        found = quotas.find(service, wanted, deadline)
    except quotas.TooManyPages as exc:
        raise ReadFailed(Unread(quotas.LIST_ACTION, str(exc), False)) from exc
    except Exception as exc:  # noqa: BLE001 - the list unread is the rows' answer
        raise ReadFailed(unread(exc, getattr(exc, "action", quotas.LIST_ACTION))) from exc
    for quota in found.values():
        if isinstance(quota["Value"], Exception):
            quota["Value"] = unread(quota["Value"], quotas.GET_ACTION)
    return found


def read_running(region: str, instance_type: str, deadline: Deadline) -> dict:
    """How many instances of the type InProgress training jobs hold, and which jobs (bounded)."""
    sagemaker = client("sagemaker", region, deadline)
    names: list[str] = []
    token = None
    while len(names) < MAX_JOBS_DESCRIBED:
        more = {"NextToken": token} if token else {}
        page = call("sagemaker:ListTrainingJobs", sagemaker.list_training_jobs,
                    StatusEquals="InProgress", MaxResults=100, **more)  # fmt: skip
        names += [summary["TrainingJobName"] for summary in page.get("TrainingJobSummaries", [])]
        token = page.get("NextToken")
        if not token:
            break
    described = names[:MAX_JOBS_DESCRIBED]
    jobs = in_parallel(lambda name: call("sagemaker:DescribeTrainingJob", sagemaker.describe_training_job,
                                         TrainingJobName=name), described)  # fmt: skip
    return {
        "used": instances_in_use(jobs, instance_type),
        "jobs": [job["TrainingJobName"] for job in jobs if instances_in_use([job], instance_type)],
        "complete": len(described) == len(names) and not token,
    }


def read_role(arn: str, asked: bool, account: str, region: str, deadline: Deadline) -> dict:
    """The role (its ARN, name, trust policy), or that it is missing or of another account. `asked` False:
    the session's own role (an assumed-role ARN)."""
    role_account, name = role_parts(arn)
    shown = arn if asked else None
    if role_account != account:
        return {"asked": shown, "other_account": role_account}
    iam = client("iam", region, deadline)
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except Exception as exc:  # noqa: BLE001 - a missing role is an answer; any other failure, its row
        if error_code(exc) == "NoSuchEntity":
            return {"asked": shown or arn, "missing": True}
        raise ReadFailed(unread(exc, "iam:GetRole")) from exc
    return {"asked": shown, "arn": role["Arn"], "name": role["RoleName"], "trust": role.get("AssumeRolePolicyDocument")}


def read_bucket(region: str, account: str, deadline: Deadline) -> dict:
    """Whether the default bucket exists, owned by this account, and its region (S3 names it even when it
    refuses: the x-amz-bucket-region header)."""
    name = default_bucket(region, account)
    s3 = client("s3", region, deadline)
    try:
        answer = s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
    except Exception as exc:  # noqa: BLE001 - absent is an answer; a refusal is its row
        code = error_code(exc)
        headers = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if code in {"404", "NoSuchBucket"}:
            return {"name": name, "exists": False, "region": None}
        if code in {"301", "PermanentRedirect"} and headers.get("x-amz-bucket-region"):
            return {"name": name, "exists": True, "region": headers["x-amz-bucket-region"]}
        raise ReadFailed(unread(exc, "s3:ListBucket")) from exc
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return {"name": name, "exists": True, "region": answer.get("BucketRegion") or headers.get("x-amz-bucket-region")}


def sdk_image_configs() -> list[dict] | None:
    """The SageMaker SDK's image_uri_config documents from its package data, found without importing the
    SDK (seconds of import); None when smdiag's interpreter has no SDK."""
    spec = importlib.util.find_spec("sagemaker")  # a top-level name: located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    configs = []
    for base in spec.submodule_search_locations:
        for directory in IMAGE_CONFIG_DIRS:
            for path in sorted(Path(base, directory).glob("*.json")):
                try:
                    configs.append(json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError):
                    log.warning("preflight.image_config_unreadable", path=str(path))
    return configs or None
