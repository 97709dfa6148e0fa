"""Managed jobs after the fact: `smdiag job NAME` diagnoses any job or endpoint as the recorder would have
(started by a pipeline, another tool, a kernel that died; a job `Stopped` at its max runtime, where the SDK
raised nothing), and `smdiag jobs --failed` lists the region's recently failed ones, each classified from
its Describe alone (no logs: one call per job), within JOBS_BUDGET_S: a kind that could not be listed (refused,
silent, the budget spent) and a job not described in time are each a line saying so, the others' lines stay.
Nothing is stored; everything is read-only.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.errors import BadInput, Failed
from agent.failures.classify import classify
from agent.failures.types import Call, Evidence, RaisedException, RemoteEvidence, Report
from agent.remote import evidence
from agent.remote.aws import (
    AwsUnavailable,
    Deadline,
    check_region,
    client,
    in_parallel,
    is_unavailable,
    why_not,
)

if TYPE_CHECKING:
    from agent.settings import Settings

JOBS_BUDGET_S = 30.0
"""`smdiag jobs --failed`: listing four kinds and describing each failed one."""
MAX_FAILED = 50
"""Failed jobs read per kind at most, newest first."""
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
"""SageMaker's rule for a job's or endpoint's name."""
POLICY_FIX = "attach the read-only policy of the README's managed-jobs section to your role"
AFTER_THE_FACT = "job"
"""The Call.kind of a job read after the fact (no SDK call failed in this process)."""


@dataclasses.dataclass(frozen=True)
class Listing:
    """How `jobs --failed` lists one kind of resource: its List call, its summaries' keys, its Describe."""

    resource: str
    method: str
    summaries: str
    name_key: str


LISTINGS = (
    Listing("training", "list_training_jobs", "TrainingJobSummaries", "TrainingJobName"),
    Listing("processing", "list_processing_jobs", "ProcessingJobSummaries", "ProcessingJobName"),
    Listing("transform", "list_transform_jobs", "TransformJobSummaries", "TransformJobName"),
    Listing("endpoint", "list_endpoints", "Endpoints", "EndpointName"),
)


@dataclasses.dataclass(frozen=True)
class JobLine:
    """One failed job or endpoint, as `smdiag jobs --failed` prints it."""

    resource: str
    name: str
    status: str | None
    time_epoch: float | None
    """When it last changed (it failed then)."""
    category: str
    summary: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise BadInput(
            f"{name!r} is not a SageMaker job or endpoint name",
            "give the name as the console shows it: letters, digits and hyphens, at most 63",
        )


def diagnose_job(name: str, resource: str, region: str | None, settings: Settings) -> Report:
    """The diagnosis of the job (or endpoint) `name`, as a report that is not stored: Describe and every
    host's logs, classified as a failed call's would be (a job that did not fail is named so)."""
    check_name(name)
    check_region(region)
    reading = evidence.Reading(resource, region, Deadline(evidence.REMOTE_BUDGET_S))
    remote = evidence.read(reading, name, {})
    if remote.job is None:
        _no_job(reading, name, remote.region)
    found = Evidence(
        Call(kind=AFTER_THE_FACT), RaisedException("", ""), remote=remote, evidence_errors=reading.errors,
        evidence_seconds=reading.seconds,
    )  # fmt: skip
    return Report(time.time(), found, classify(found))


_NOT_FOUND = re.compile(r"^ValidationException: .*(?:not found|could not find)", re.IGNORECASE)
"""SageMaker's answer to a Describe of a name it does not have."""


def _no_job(reading: evidence.Reading, name: str, region: str | None) -> None:
    """Raise why the Describe of `name` gave nothing: no such resource there, AWS silent, or AWS refusing."""
    what = "endpoint" if reading.resource == "endpoint" else f"{reading.resource} job"
    why = reading.errors.get("describe", "")
    if reading.silent is not None:
        raise AwsUnavailable(f"cannot read the {what} {name}: {why}")
    if _NOT_FOUND.search(why):
        others = "--processing, --transform, --tuning or --endpoint" if reading.resource == "training" else (
            "another kind's flag")  # fmt: skip
        raise Failed(f"no {what} named {name} in {region}", f"check the name and --region, or use {others}")
    raise Failed(f"cannot read the {what} {name}: {why}", POLICY_FIX)


class BudgetSpent(AwsUnavailable):
    """The budget of `jobs --failed` was spent before a kind's first page."""


@dataclasses.dataclass(frozen=True)
class NotRead:
    """A kind `jobs --failed` could not list: the others' lines stay."""

    resource: str
    why: str
    """One line: AWS's refusal naming the IAM action it needs, the silence, or the budget spent."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def plural(resource: str) -> str:
    return "endpoints" if resource == "endpoint" else f"{resource} jobs"


def failed_jobs(
    since_s: float,
    region: str | None,
    settings: Settings,
    step: Callable[[str], None] = lambda text: None,
    budget_s: float = JOBS_BUDGET_S,
) -> tuple[list[JobLine], list[NotRead]]:
    """The training, processing and transform jobs and the endpoints of the region that failed in the last
    `since_s` seconds, newest first, each classified from its Describe alone; and the kinds that could not be
    listed, each with why. All within `budget_s`: a kind not listed in time, or a job not described in time,
    is said so (a line), not waited for. Raises (AwsUnavailable, or Failed naming the permission) only when
    no kind could be listed."""
    check_region(region)
    deadline = Deadline(budget_s)
    sagemaker = client("sagemaker", region, deadline)
    region = sagemaker.meta.region_name
    after = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=since_s)
    found: list[tuple[Listing, dict]] = []
    unread: list[NotRead] = []
    errors: list[Exception] = []
    for listing in LISTINGS:
        step(f"listing failed {plural(listing.resource)}")
        try:
            if silent := next((e for e in errors if is_unavailable(e) and not isinstance(e, BudgetSpent)), None):
                raise AwsUnavailable(f"not asked: {why_not(silent, _list_action(LISTINGS[0]))}")
            summaries, complete = _failed_since(sagemaker, listing, after, deadline)
        except Exception as exc:  # noqa: BLE001 - one kind unread is a line; the others' lines stay
            errors.append(exc)
            unread.append(NotRead(listing.resource, why_not(exc, _list_action(listing))))
            continue
        found += [(listing, summary) for summary in summaries]
        if not complete:
            unread.append(NotRead(listing.resource, f"listed in part: {_spent(budget_s)}"))
    if len(errors) == len(LISTINGS):
        line = unread[0].why
        raise (AwsUnavailable(line) if is_unavailable(errors[0]) else Failed(line, POLICY_FIX)) from None
    step(f"reading {len(found)} Describe{'s' if len(found) != 1 else ''}")
    lines = in_parallel(
        lambda entry: _job_line(sagemaker, region, *entry, deadline=deadline), found, deadline,
        late=lambda entry: _late_line(*entry, budget_s=budget_s),
    )  # fmt: skip
    return sorted(lines, key=lambda line: line.time_epoch or 0, reverse=True), unread


def _list_action(listing: Listing) -> str:
    return "sagemaker:" + evidence.iam_action(listing.method)


def _spent(budget_s: float) -> str:
    return f"the {budget_s:g} s budget of jobs --failed was spent"


def _failed_since(sagemaker, listing: Listing, after: datetime.datetime, deadline: Deadline) -> tuple[list[dict], bool]:
    """The summaries of `listing`'s kind that failed since `after` (last modified since then), every page,
    up to MAX_FAILED, and whether the list was read to its end (False: the budget was spent first). The List
    call's error is raised; AwsUnavailable when the budget was spent before its first page."""
    summaries: list[dict] = []
    token = None
    while len(summaries) < MAX_FAILED:
        if not deadline.left():
            if not summaries and token is None:
                raise BudgetSpent(f"not listed: {_spent(deadline.seconds)}")
            return summaries[:MAX_FAILED], False
        page = getattr(sagemaker, listing.method)(
            StatusEquals="Failed", LastModifiedTimeAfter=after, SortBy="CreationTime", SortOrder="Descending",
            MaxResults=min(100, MAX_FAILED), **({"NextToken": token} if token else {}),
        )  # fmt: skip
        summaries += page.get(listing.summaries, [])
        token = page.get("NextToken")
        if not token:
            break
    return summaries[:MAX_FAILED], True


def _late_line(listing: Listing, summary: dict, budget_s: float) -> JobLine:
    name, when = summary[listing.name_key], _when(summary)
    return JobLine(listing.resource, name, "Failed", when, "not_read", f"not read: {_spent(budget_s)}")


def _when(summary: dict) -> float | None:
    when = summary.get("LastModifiedTime") or summary.get("CreationTime")
    return when.timestamp() if isinstance(when, datetime.datetime) else None


def _job_line(sagemaker, region: str, listing: Listing, summary: dict, deadline: Deadline) -> JobLine:
    """One failed job's line: its category from its Describe alone (its logs are `smdiag job`'s)."""
    if not deadline.left():
        return _late_line(listing, summary, deadline.seconds)
    name, when = summary[listing.name_key], _when(summary)
    kind = evidence.KINDS[listing.resource]
    try:
        job = evidence.json_safe(getattr(sagemaker, kind.describe)(**{kind.name_parameter: name}))
    except Exception as exc:  # noqa: BLE001 - one unreadable job is a line saying why, not the command's end
        why = why_not(exc, "sagemaker:" + evidence.iam_action(kind.describe))
        return JobLine(listing.resource, name, "Failed", when, "not_read", why)
    remote = RemoteEvidence(listing.resource, name, region, {}, job=job)
    diagnosis = classify(Evidence(Call(kind=AFTER_THE_FACT), RaisedException("", ""), remote=remote))
    return JobLine(listing.resource, name, job.get(kind.status), when, diagnosis.category, diagnosis.summary)
