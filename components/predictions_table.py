"""`PredictionsTable`: the DynamoDB table of prediction records and users' feedback.

The proxy writes one item per answered prediction (which variant and model version
answered, the top label, never the image) and updates it with the user's verdict;
`python -m admin.report --table <predictions_table>` compares the variants from it. The
item layout is the proxy's (`proxy/predictions.py`); this component owns the table: its
key and TTL attribute (`shared.predictions`, which the proxy imports too), on-demand
capacity (a record costs a fraction of a cent per thousand), point-in-time recovery,
encryption with the AWS managed KMS key (`aws/dynamodb`, which the proxy's role needs no
grant for), and optionally deletion protection.
"""

from collections.abc import Mapping
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from shared.predictions import PARTITION_KEY, TTL_ATTRIBUTE

TYPE = "image-classifier:predictions_table:PredictionsTable"
RECORD_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
"""What the proxy does with the table: write a record, add feedback to it, read it."""


# A plain dict (`TypedDict`): the component provider passes it so to a program in another
# language, and infers its schema from these annotations at run time (so no annotations
# from `__future__` in this module).
class PredictionsTableArgs(TypedDict):
    table_name: str
    """The table's name (the stack output `predictions_table`)."""
    deletion_protection: NotRequired[pulumi.Input[bool]]
    """DynamoDB refuses to delete the table (and `pulumi destroy` fails) while it is on; off
    by default."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags of the table."""


class PredictionsTable(pulumi.ComponentResource):
    """The DynamoDB table `ProxyApi` records each prediction, and users' feedback on it, in:
    on-demand, encrypted, with point-in-time recovery and the proxy's key and TTL."""

    table_name: pulumi.Output[str]
    """The table (`ProxyApi`'s `predictions_table_name`)."""
    table_arn: pulumi.Output[str]
    """The table's ARN (`ProxyApi`'s `predictions_table_arn`)."""

    def __init__(
        self, name: str, args: PredictionsTableArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        table = aws.dynamodb.Table(
            f"{name}-table",
            name=args["table_name"],
            billing_mode="PAY_PER_REQUEST",
            hash_key=PARTITION_KEY,
            attributes=[{"name": PARTITION_KEY, "type": "S"}],
            ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True},
            deletion_protection_enabled=args.get("deletion_protection", False),
            tags=args.get("tags"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.table_name = table.name
        self.table_arn = table.arn
        self.register_outputs({"table_name": self.table_name, "table_arn": self.table_arn})
