"""check-network under moto: the subnet, its VPC and EMR's existing security groups must carry EMR's tag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rental_analytics import platform
from rental_analytics.car_rental.network import EMR_MANAGED_TAG_KEY, check_network, tag_command
from rental_analytics.cli import main
from rental_analytics.platform.config import ConfigError
from tests.asl_harness import REGION

TAG = [{"Key": EMR_MANAGED_TAG_KEY, "Value": "true"}]


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        platform.aws.clients.cache_clear()  # the command's clients, made inside the mock
        yield boto3.client("ec2", region_name=REGION)
    platform.aws.clients.cache_clear()


def _network(ec2: Any, *, subnet_tagged: bool = True, vpc_tagged: bool = True) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    for resource, tagged in ((vpc, vpc_tagged), (subnet, subnet_tagged)):
        if tagged:
            ec2.create_tags(Resources=[resource], Tags=TAG)
    return vpc, subnet


def _group(ec2: Any, vpc: str, name: str, tagged: bool) -> str:
    group = ec2.create_security_group(GroupName=name, Description="EMR", VpcId=vpc)["GroupId"]
    if tagged:
        ec2.create_tags(Resources=[group], Tags=TAG)
    return str(group)


def test_a_tagged_subnet_vpc_and_group_pass(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    vpc, subnet = _network(ec2)
    _group(ec2, vpc, "ElasticMapReduce-master", tagged=True)

    assert main(["check-network", "--subnet", subnet, "--region", REGION]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[:-1]] == ["PASS", "PASS", "PASS"]
    assert out[-1] == "PASSED: 3 of 3 checks"


def test_an_untagged_vpc_fails_with_the_command_that_tags_it(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # The subnet alone tagged is what docs/deployment.md asked for before: EMR then launches into the subnet but
    # cannot create its default security groups in the VPC.
    vpc, subnet = _network(ec2, vpc_tagged=False)

    assert main(["check-network", "--subnet", subnet, "--region", REGION]) == 1
    out = capsys.readouterr().out.splitlines()
    [failed] = [line for line in out if line.startswith("FAIL ")]
    assert vpc in failed and tag_command(vpc) in failed
    assert out[-1] == "FAILED: 1 of 2 checks"


def test_an_untagged_existing_emr_group_fails_and_other_groups_do_not_count(ec2: Any) -> None:
    vpc, subnet = _network(ec2)
    untagged = _group(ec2, vpc, "ElasticMapReduce-slave", tagged=False)
    _group(ec2, vpc, "ElasticMapReduce-master", tagged=True)
    _group(ec2, vpc, "database", tagged=False)
    other_vpc, _ = _network(ec2)
    _group(ec2, other_vpc, "ElasticMapReduce-ServiceAccess", tagged=False)

    steps = check_network(ec2, subnet)

    assert [(s.passed, s.name.split(":")[0]) for s in steps] == [
        (True, "the subnet"),
        (True, "its VPC"),
        (True, "EMR's existing group ElasticMapReduce-master"),
        (False, "EMR's existing group ElasticMapReduce-slave"),
    ]
    assert tag_command(untagged) in steps[-1].detail


def test_an_untagged_subnet_fails(ec2: Any) -> None:
    _, subnet = _network(ec2, subnet_tagged=False)
    assert [s.passed for s in check_network(ec2, subnet)] == [False, True]


def test_a_subnet_that_does_not_exist_is_a_usage_error(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="no subnet subnet-0000000000000000f"):
        check_network(ec2, "subnet-0000000000000000f")
    assert main(["check-network", "--subnet", "subnet-0000000000000000f", "--region", REGION]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no subnet subnet-0000000000000000f in this region" in line
