"""SageMaker's quotas in Service Quotas, read one way for the preflight (`smdiag doctor --remote`) and the
recorder (a Create refused with ResourceLimitExceeded): each quota found by its name in the list of the
region's defaults (paginated: SageMaker has one quota per instance type and job kind), then its applied value.
A quota never changed has no applied value (GetServiceQuota answers NoSuchResourceException): its default
applies."""

from __future__ import annotations

from agent.remote.aws import AwsUnavailable, Deadline, asked, error_code, in_parallel

SERVICE_CODE = "sagemaker"
"""Service Quotas' code for SageMaker."""
MAX_QUOTA_PAGES = 40
"""Pages of 100 quotas read at most."""
LIST_ACTION = "servicequotas:ListAWSDefaultServiceQuotas"
GET_ACTION = "servicequotas:GetServiceQuota"


class TooManyPages(Exception):
    """The list of defaults has more than MAX_QUOTA_PAGES pages: read no further."""

    action = LIST_ACTION


def find(quotas, wanted: set[str], deadline: Deadline) -> dict[str, dict]:
    """The quotas named in `wanted` that exist in the region (by name): each {"QuotaName", "QuotaCode",
    "Default", "Value"}, "Value" the applied value (a number) or the exception that kept it from being read
    (its `action` the IAM action it needed). `quotas`: a Service Quotas client. The list's own failure is
    raised (with `action`); the list is read until all are found or it ends."""
    found: dict[str, dict] = {}
    token = None
    for _page in range(MAX_QUOTA_PAGES):
        if not deadline.left():
            raise AwsUnavailable(f"no time left to read SageMaker's quota list (budget {deadline.seconds:g} s spent)")
        more = {"NextToken": token} if token else {}
        page = asked(LIST_ACTION, quotas.list_aws_default_service_quotas, ServiceCode=SERVICE_CODE,
                      MaxResults=100, **more)  # fmt: skip
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") in wanted:
                found[quota["QuotaName"]] = {"QuotaName": quota["QuotaName"], "QuotaCode": quota.get("QuotaCode"),
                                             "Default": quota.get("Value")}  # fmt: skip
        token = page.get("NextToken")
        if not token or wanted <= found.keys():
            break
    else:
        raise TooManyPages(f"the SageMaker quota list has more than {MAX_QUOTA_PAGES} pages: read no further")
    values = in_parallel(lambda quota: applied(quotas, quota), list(found.values()))
    for quota, value in zip(found.values(), values, strict=True):
        quota["Value"] = value
    return found


def applied(quotas, quota: dict) -> float | Exception:
    """The quota's applied value: GetServiceQuota's, its default when none was ever applied; the exception
    (with `action`) when it could not be read."""
    try:
        answer = quotas.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=quota["QuotaCode"])
    except Exception as exc:  # noqa: BLE001 - an unread value is the caller's to say, the quota found stays
        if error_code(exc) == "NoSuchResourceException":
            return quota["Default"]
        exc.action = GET_ACTION
        return exc
    return answer["Quota"].get("Value", quota["Default"])
