"""`rental-analytics check-network`: the EMR subnet, its VPC and EMR's security groups carry the managed-policy tag."""

from __future__ import annotations

from typing import Any

from rental_analytics.car_rental.verify import Step
from rental_analytics.platform.config import ConfigError

# AmazonEMRServicePolicy_v2 acts only on resources with this tag: it launches into a tagged subnet, creates its
# default security groups only in a tagged VPC, and changes an existing ElasticMapReduce-* group only once it
# is tagged (EMR management guide, emr-managed-iam-policies, "manually tagged resources").
EMR_MANAGED_TAG_KEY, EMR_MANAGED_TAG_VALUE = "for-use-with-amazon-emr-managed-policies", "true"
EMR_DEFAULT_GROUPS = "ElasticMapReduce-*"


def tag_command(resource_id: str) -> str:
    """The AWS CLI command that tags one resource for EMR."""
    return (
        f"aws ec2 create-tags --resources {resource_id} --tags Key={EMR_MANAGED_TAG_KEY},Value={EMR_MANAGED_TAG_VALUE}"
    )


def _tagged(described: dict[str, Any]) -> bool:
    tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
    return tags.get(EMR_MANAGED_TAG_KEY) == EMR_MANAGED_TAG_VALUE


def _step(what: str, resource_id: str, tagged: bool) -> Step:
    detail = f"{resource_id} is tagged {EMR_MANAGED_TAG_KEY}={EMR_MANAGED_TAG_VALUE}"
    return Step(what, tagged, detail if tagged else f"{resource_id} is not tagged; run: {tag_command(resource_id)}")


def check_network(ec2: Any, subnet_id: str) -> list[Step]:
    """The tag checks for the cluster's subnet; ConfigError when there is no such subnet in the region."""
    try:
        [subnet] = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ec2.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code", "").startswith("InvalidSubnet"):
            raise ConfigError(f"there is no subnet {subnet_id} in this region: check --subnet and --region") from None
        raise
    vpc_id = subnet["VpcId"]
    [vpc] = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [EMR_DEFAULT_GROUPS]}]
    )["SecurityGroups"]
    steps = [
        _step("the subnet: EMR launches the cluster only into a tagged one", subnet_id, _tagged(subnet)),
        _step("its VPC: EMR creates its default security groups only in a tagged one", vpc_id, _tagged(vpc)),
    ]
    steps += [
        _step(
            f"EMR's existing group {group['GroupName']}: EMR changes it only once tagged",
            group["GroupId"],
            _tagged(group),
        )
        for group in sorted(groups, key=lambda g: g["GroupName"])
    ]
    return steps
