"""The pure parts of agent.remote: the one region check, the trust policy's fix, the verdict of a preflight
that read nothing, and the tail of the logs when one stream cannot be read."""

from __future__ import annotations

import json

import pytest

from agent.errors import BadInput
from agent.remote import preflight
from agent.remote.aws import check_region


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2", "ap-southeast-2", "us-gov-west-1", "il-central-1"])
def test_a_region_name_passes(region):
    check_region(region)


def test_no_region_given_passes():
    check_region(None)


@pytest.mark.parametrize("region", ["mars", "useast1", "us-east", "US-EAST-1", "us-east-1 ", "us-east-123"])
def test_a_region_that_is_no_regions_name_is_bad_input(region):
    with pytest.raises(BadInput) as raised:
        check_region(region)
    assert raised.value.one_line().startswith(f"--region {region!r} is not an AWS region name")


def test_the_preflight_and_jobs_share_the_region_check():
    from agent.remote import jobs

    assert not hasattr(jobs, "REGION") and not hasattr(preflight, "_REGION")
    with pytest.raises(BadInput):
        preflight.validate(preflight.Request(region="us-east-1a"))


TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.mark.parametrize("given", [TRUST_EC2, json.dumps(TRUST_EC2)], ids=["mapping", "json-text"])
def test_the_trust_fix_keeps_the_existing_statement_whether_given_as_mapping_or_text(given):
    fixed = preflight._trust_with_sagemaker(given)
    assert fixed["Version"] == "2012-10-17"
    assert fixed["Statement"][0] == TRUST_EC2["Statement"][0]
    assert fixed["Statement"][1]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert preflight.trusts_sagemaker(fixed) == (True, False)


@pytest.mark.parametrize("given", [None, "", "not json"])
def test_the_trust_fix_of_no_or_unreadable_policy_is_sagemakers_statement_alone(given):
    fixed = preflight._trust_with_sagemaker(given)
    assert [s["Principal"] for s in fixed["Statement"]] == [{"Service": "sagemaker.amazonaws.com"}]


def test_a_role_row_with_a_trust_policy_given_as_text_names_the_fix():
    read = {"role": {"asked": "arn:aws:iam::123456789012:role/r", "arn": "arn:aws:iam::123456789012:role/r",
                     "name": "r", "trust": json.dumps(TRUST_EC2)}, "account": "123456789012"}  # fmt: skip
    row = preflight._role_row(read)
    assert row.state == "problem" and "ec2.amazonaws.com" in row.commands[0]


def rows_of(**states: str) -> list[preflight.Check]:
    return [preflight.Check("caller", "ok", "me"), *(preflight.Check(c, s, f"{s}: x") for c, s in states.items())]


def test_a_preflight_that_read_nothing_it_was_asked_has_no_verdict():
    rows = rows_of(
        instance_type="na", training_quota="na", endpoint_quota="na", role="na", bucket="unknown", image="na"
    )
    assert [row.check for row in preflight.undecided(preflight.Request(), rows)] == ["bucket"]


def test_an_unknown_quota_of_the_type_asked_has_no_verdict_other_unknowns_do():
    asked = preflight.Request(instance_type="ml.g5.xlarge")
    rows = rows_of(instance_type="ok", training_quota="unknown", endpoint_quota="unknown", role="unknown", bucket="ok")
    assert [row.check for row in preflight.undecided(asked, rows)] == ["training_quota"]
    rows = rows_of(instance_type="ok", training_quota="ok", endpoint_quota="unknown", role="unknown", bucket="ok")
    assert preflight.undecided(asked, rows) == []


def test_the_logs_read_keep_a_partly_read_stream_and_name_the_unread_ones():
    from botocore.exceptions import ClientError

    from agent.remote import evidence

    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetLogEvents")
    streams = [f"job/algo-{n}-1700000000" for n in (1, 2, 3)]
    tails = [([(1.0, "ok")], None), ([(1.0, "half"), (2.0, "KeyError: 'x'")], throttled), ([], throttled)]
    host_logs, unread = evidence.logs_read(streams, tails, "job/", evidence._job_host)
    assert [(log.host, log.lines, log.first_error) for log in host_logs] == [
        ("algo-1", ["ok"], None), ("algo-2", ["half", "KeyError: 'x'"], "KeyError: 'x'")
    ]  # fmt: skip
    assert unread == (
        "2 of 3 log streams not read whole, the others kept: algo-2 (in part: ThrottlingException: Rate exceeded "
        "(asking logs:GetLogEvents)); algo-3 (not read: ThrottlingException: Rate exceeded (asking logs:GetLogEvents))"
    )
    assert evidence.logs_read(streams[:1], tails[:1], "job/", evidence._job_host)[1] is None
