"""The pure half of diskguard: what goes first, what is never touched, and why; and its measure of a disk."""

import os

import pytest

from agent.diskguard import usage_of
from agent.errors import BadInput
from agent.guard.plan import Container, Image, Policy, Usage, parse_duration, plan_pruning, simulate
from agent.guard.registry import parse_reference

NOW = 1_000_000.0
MB = 1024 * 1024


def image(name, arrived=NOW - 3600, used=None, parent="", size=10 * MB, tags=None) -> Image:
    return Image(f"sha256:{name}", (f"{name}:1",) if tags is None else tags, size, parent, arrived, used)


def container(name, image_id, running=False, finished=NOW - 2 * 86400, failed=False) -> Container:
    return Container(f"c-{name}", name, image_id, running, None if running else finished, failed, MB)


POLICY = Policy.build(85, 75, [], "10m", "24h")


def names(plan):
    return [(step.kind, step.names[0] if step.names else step.id) for step in plan.steps]


def test_order_is_dangling_then_old_containers_then_build_cache_then_least_recently_used():
    images = [
        image("recent", used=NOW - 60),
        image("old", used=NOW - 7200),
        image("never-used", arrived=NOW - 5000),
        image("dangling", tags=()),
    ]
    containers = [container("finished", "sha256:gone")]
    plan = plan_pruning(images, containers, 5 * MB, POLICY, NOW)
    assert names(plan) == [
        ("image", "sha256:dangling"),
        ("container", "finished"),
        ("build_cache", "build-cache"),
        ("image", "never-used:1"),
        ("image", "old:1"),
        ("image", "recent:1"),
    ]
    assert plan.steps[3].reason == "least recently pulled, never seen in use"
    assert plan.steps[4].reason == "least recently used"


def test_never_removed_and_why():
    images = [
        image("serving"),
        image("stopped-user"),
        image("pinned", tags=("123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tensorflow:2.1",)),
        image("fresh", arrived=NOW - 60),
        image("free"),
    ]
    containers = [
        container("endpoint", "sha256:serving", running=True),
        container("recent-stop", "sha256:stopped-user", finished=NOW - 60),
    ]
    policy = Policy.build(85, 75, ["sagemaker-tensorflow"], "10m", "24h")
    plan = plan_pruning(images, containers, 0, policy, NOW)
    assert names(plan) == [("image", "free:1")]
    reasons = {k.names[0]: k.reason for k in plan.kept}
    assert reasons == {
        "serving:1": "used by running container endpoint",
        "stopped-user:1": "used by stopped container recent-stop",
        "123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tensorflow:2.1": "matches --keep sagemaker-tensorflow",
        "fresh:1": "younger than --min-age (60s old)",
        "recent-stop": "stopped less than --container-max-age ago",
    }


def test_an_old_stopped_container_frees_its_image_but_the_newest_failed_one_is_kept():
    images = [image("a"), image("b")]
    containers = [
        container("done", "sha256:a", finished=NOW - 3 * 86400),
        container("crashed-older", "sha256:b", finished=NOW - 3 * 86400, failed=True),
        container("crashed", "sha256:b", finished=NOW - 2 * 86400, failed=True),
    ]
    plan = plan_pruning(images, containers, 0, POLICY, NOW)
    assert names(plan) == [("container", "done"), ("container", "crashed-older"), ("image", "a:1")]
    assert {k.names[0]: k.reason for k in plan.kept}["crashed"] == "the newest failed container"


def test_children_go_before_their_parents_and_a_kept_child_keeps_its_parent():
    images = [
        image("base", arrived=NOW - 9000),
        image("child", arrived=NOW - 100 * 60, parent="sha256:base"),
        image("root2", arrived=NOW - 8000),
        image("kid2", arrived=NOW - 60, parent="sha256:root2"),
    ]
    plan = plan_pruning(images, [], 0, POLICY, NOW)
    assert names(plan) == [("image", "child:1"), ("image", "base:1")]
    reasons = {k.names[0]: k.reason for k in plan.kept}
    assert reasons["root2:1"] == "parent of kept image kid2:1"


def test_usage_and_simulation():
    usage = Usage(used=90 * MB, avail=10 * MB)
    assert usage.percent == 90
    assert usage.bytes_over(75) == 15 * MB + 1
    assert Usage(used=70 * MB, avail=30 * MB).bytes_over(75) == 0
    plan = plan_pruning([image("a", size=10 * MB), image("b", size=10 * MB), image("c")], [], 0, POLICY, NOW)
    assert [s.names[0] for s in simulate(plan, 15 * MB)] == ["a:1", "b:1"]


def test_usage_is_measured_as_df_does_and_a_missing_path_says_why(tmp_path):
    st = os.statvfs(tmp_path)
    usage = usage_of(tmp_path)
    assert usage.used + usage.avail == (st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize
    with pytest.raises(FileNotFoundError) as missing:
        usage_of(tmp_path / "absent")
    assert missing.value.strerror == "No such file or directory"


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("24h", 86400), ("2d", 172800), ("0", 0)])
def test_durations(text, seconds):
    assert parse_duration(text, "--min-age") == seconds


@pytest.mark.parametrize(
    "high,low,keep,min_age,match",
    [
        (85, 90, [], "10m", "--low 90 is not below --high 85"),
        (100, 75, [], "10m", "--high 100 is outside 1..99"),
        (85, 75, ["(unclosed"], "10m", "--keep '\\(unclosed' is not a valid regular expression"),
        (85, 75, [], "ten minutes", "--min-age 'ten minutes' is not a duration"),
    ],
)
def test_bad_policy_is_bad_input(high, low, keep, min_age, match):
    with pytest.raises(BadInput, match=match):
        Policy.build(high, low, keep, min_age, "24h")


def test_image_references_resolve_like_the_engine():
    assert parse_reference("busybox").registry == "docker.io"
    assert parse_reference("busybox").repository == "library/busybox"
    ecr = parse_reference("123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert (ecr.registry, ecr.repository, ecr.reference) == (
        "123456789012.dkr.ecr.us-west-2.amazonaws.com",
        "sagemaker-scikit-learn",
        "1.2-1-cpu-py3",
    )
    local = parse_reference("127.0.0.1:5000/team/model@sha256:abc")
    assert (local.registry, local.repository, local.reference) == ("127.0.0.1:5000", "team/model", "sha256:abc")
    pinned = parse_reference("localhost:5000/team/model:2@sha256:abc")  # the digest wins over the tag
    assert (pinned.registry, pinned.repository, pinned.reference) == ("localhost:5000", "team/model", "sha256:abc")
    assert parse_reference("index.docker.io/library/busybox").registry == "docker.io"
    for bad in ("http://host/repo", "-host.io/repo"):
        with pytest.raises(BadInput):
            parse_reference(bad)
    with pytest.raises(BadInput):
        parse_reference("Not An Image")
