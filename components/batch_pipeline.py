"""`BatchPipeline`: the batch pipeline on AWS (config `batch`, off by default).

    s3://<bucket>/inbox/<name>  --EventBridge: "Object Created" under inbox/-->  Step Functions
      Classify        Lambda `pipeline.handler.classify`
                      -> results/<name>.json or review/<name>.json
      Routed          review (new) -> NotifyReview: SNS review topic -> Done; otherwise -> Done
      RecordFailure   every error left after its retries: Lambda `pipeline.handler.record_failure`
                      -> failed/<name>.json -> Done

What runs is the `batch` package's: the task functions and their error names
(`pipeline.tasks`), the retry table and the state machine (`pipeline.workflow.definition`), the
bucket's folders (`pipeline.storage`). This component deploys them and gives each part exactly
what it does:

- one private bucket (a `PrivateBucket`: encrypted, versioned, TLS-only) whose objects put
  under `inbox/` start the workflow; images expire from `inbox/` after `inbox_days`, the
  outcomes after `outcome_days`, a replaced version 30 days later. The labels of the model
  that classifies (`model_labels/<version>.json`, as `python -m batch review` reads them)
  are uploaded beside the outcomes and kept when the model changes, for the outcomes of
  the older version;
- two Lambda functions on one zip (`proxy/`, `pipeline/` and `shared/`), each with its own
  role and log group: classify may read the image and its outcomes, write results/ and
  review/, invoke exactly the endpoint and put prediction records in exactly the predictions
  table; record_failure may read the same, write failed/ and nothing else. Classify's reserved
  concurrency is the batch's bound (`concurrency`, config `batchConcurrency`): a flood of
  uploads takes at most that many of the endpoint's slots and of the account's Lambda
  concurrency, and the images beyond it wait (`pipeline.workflow.WAIT_FOR_A_SLOT`);
- a STANDARD state machine (an image takes minutes when the endpoint starts cold, and each
  image is one execution whose history Step Functions keeps for 90 days) logging every
  event with its data to its own log group; its role may invoke exactly the two functions
  and publish to exactly the review topic;
- an SNS review topic encrypted with the AWS managed key `alias/aws/sns`, mailed to
  `review_email` when given;
- an EventBridge rule on this bucket's `inbox/` objects whose role may start exactly this
  state machine;
- with `transform`, the role of SageMaker Batch Transform jobs over the bucket
  (`components.transform_role`), whose work under `transform/` expires after
  `transform_days`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam_policy import policy_document, service_trust_policy
from components.private_bucket import PrivateBucket, PrivateBucketArgs, tls_only_bucket_policy
from components.proxy_api import TRACE_WRITER_STATEMENT, labels_files, lambda_code
from components.service_role import (
    DEFAULT_LOG_RETENTION_DAYS,
    ServiceLogs,
    ServiceRoleNames,
    service_role,
)
from components.transform_role import TransformAccess, transform_role
from pipeline.storage import FAILED, INBOX, OUTCOME_FOLDERS, RESULTS, REVIEW, TRANSFORM
from pipeline.workflow import RECORD_FAILURE_TIMEOUT_SECONDS, TASK_TIMEOUT_MARGIN_SECONDS
from pipeline.workflow import definition as workflow_definition
from shared.labels import MODEL_LABELS_DIR

TYPE = "image-classifier:batch_pipeline:BatchPipeline"
PACKAGES = ("proxy", "pipeline")
"""The batch Lambda's zip: the proxy's checks and invoker, and the batch tasks beside them
(and `shared/`, which `lambda_code` puts beside each)."""
CLASSIFY_HANDLER = "pipeline.handler.classify"
RECORD_FAILURE_HANDLER = "pipeline.handler.record_failure"
SAGEMAKER_MAX_ATTEMPTS = 2
"""The invoker's own tries per task: Step Functions does the long waits (its retry table)."""
NONCURRENT_VERSION_DAYS = 30
REVIEW_TOPIC_KEY = "alias/aws/sns"
"""The AWS managed key of SNS. Its key policy lets any principal of the account use it
through SNS, so the workflow's role needs no KMS permission to publish."""

LOG_DELIVERY_STATEMENT = {
    "Sid": "DeliverExecutionLogs",
    "Effect": "Allow",
    "Action": [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ],
    # Step Functions logs through CloudWatch Logs' vended delivery, whose actions take no
    # resource: AWS documents "*" as the only one for them.
    "Resource": "*",
}
WORKFLOW_TRACE_STATEMENT = {
    "Sid": "WriteTraces",
    "Effect": "Allow",
    "Action": [
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    ],
    # X-Ray has no resource-level permissions for these.
    "Resource": "*",
}
"""What a state machine with X-Ray tracing needs, as Step Functions documents it."""


def batch_concurrency(setting: int, endpoint_max_concurrency: int) -> int:
    """The batch's bound (config `batchConcurrency`): `setting`, or for 0 half of the
    endpoint's max concurrency, at least 1, so that the API keeps the other half."""
    return setting or max(1, endpoint_max_concurrency // 2)


def batch_concurrency_problems(setting: int, endpoint_max_concurrency: int) -> dict[str, str]:
    """What is wrong with the bound, by field (`concurrency`, `max_concurrency`): it must
    leave the API at least one of the endpoint's slots."""
    if setting < 0:
        return {"concurrency": f"{setting} is not 0 (half of serverlessMaxConcurrency) or more"}
    if endpoint_max_concurrency < 1:
        return {}  # out of range: `serverless_problems` says so
    if endpoint_max_concurrency == 1:
        return {
            "max_concurrency": "1 leaves no slot for the API while a batch runs; set 2 or more "
            "for batch"
        }
    bound = batch_concurrency(setting, endpoint_max_concurrency)
    if bound >= endpoint_max_concurrency:
        return {
            "concurrency": f"{setting} leaves the API none of the endpoint's "
            f"serverlessMaxConcurrency ({endpoint_max_concurrency}); at most "
            f"{endpoint_max_concurrency - 1}, or 0 for half"
        }
    return {}


def inbox_event_pattern(bucket: str) -> dict[str, Any]:
    """The EventBridge pattern of a new object under `inbox/` of `bucket` (S3 sends one
    event per object, at least once: `pipeline.tasks` skips an image already done)."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": INBOX}]}},
    }


def bucket_statements(bucket_arn: str, writes: Sequence[str]) -> list[dict[str, Any]]:
    """What a task does in the bucket (`pipeline.tasks`): read the image and every earlier
    outcome of it, write its outcome to one of `writes`, delete the image's other
    outcomes."""
    deletes = [folder for folder in OUTCOME_FOLDERS if set(writes) - {folder}]
    return [
        {
            "Sid": "ReadTheImageAndItsOutcomes",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": _objects(bucket_arn, INBOX, *OUTCOME_FOLDERS),
        },
        {
            "Sid": "WriteItsOutcome",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": _objects(bucket_arn, *writes),
        },
        {
            "Sid": "RemoveTheOtherOutcomes",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": _objects(bucket_arn, *deletes),
        },
        {
            # Without it S3 answers 403 instead of 404 for an object that is not there, and
            # a missing outcome (the usual case) would read as a storage failure.
            "Sid": "TellMissingObjectsFromForbiddenOnes",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
        },
    ]


def _objects(bucket_arn: str, *folders: str) -> list[str]:
    return [f"{bucket_arn}/{folder}*" for folder in folders]


def batch_code(project_dir: Path) -> pulumi.AssetArchive:
    """The batch Lambda's zip: each of `PACKAGES` at its root, as `lambda_code` packages the
    proxy's (with `shared/` beside it), so both handler strings resolve in Lambda as in the
    tests."""
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {}
    for package in PACKAGES:
        assets |= lambda_code(project_dir / package).assets
    return pulumi.AssetArchive(assets)


def _labels_json(version: str, names: Sequence[str]) -> str:
    """The labels file of `version`, as the proxy's zip carries it."""
    return labels_files({version: names})[f"{MODEL_LABELS_DIR}/{version}.json"].text


@dataclass
class BatchPipelineArgs:
    name_prefix: str
    """Stack-unique prefix for the names AWS shows (log groups)."""
    project_dir: Path
    """Holds the `proxy/` and `pipeline/` packages."""
    endpoint_name: pulumi.Input[str]
    endpoint_arn: pulumi.Input[str]
    """The endpoint the batch classifies with (`SAGEMAKER_ENDPOINT_NAME`), the only one the
    classify task may invoke."""
    predictions_table_name: pulumi.Input[str]
    predictions_table_arn: pulumi.Input[str]
    """Where each classification is recorded (variant `batch`, `PREDICTIONS_TABLE`); the
    classify task may put items there and nothing else."""
    model_labels: Mapping[str, pulumi.Input[Sequence[str]]] = field(default_factory=dict)
    """The classifying model's labels by version, uploaded as `model_labels/<version>.json`."""
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Extra environment of the classify task, as the proxy's (`REVIEW_THRESHOLD`, ...)."""
    review_email: str | None = None
    """Subscribed to the review topic (the address confirms it first)."""
    concurrency: int = 1
    """The classify function's reserved concurrency: at most this many images at once, so
    at most this many calls on the endpoint (`batch_concurrency`)."""
    memory_mb: int = 512
    timeout_seconds: int = 90
    """Of the classify function; a cold endpoint answers within a minute or is retried."""
    inbox_days: int = 90
    """Days an image stays in `inbox/`: `python -m batch export` needs it until reviewed."""
    outcome_days: int = 365
    """Days an outcome stays in `results/`, `review/` or `failed/`."""
    transform: TransformAccess | None = None
    """With it, a role for SageMaker Batch Transform jobs over the bucket
    (`components.transform_role`, `python -m batch run --on sagemaker`)."""
    transform_days: int = 30
    """Days a transform job's manifest and raw outputs stay in `transform/`: its command
    sorts them into outcomes when it ends (or `python -m batch attach` does, later)."""
    log_retention_days: pulumi.Input[int] = DEFAULT_LOG_RETENTION_DAYS
    log_level: pulumi.Input[str] = "INFO"
    tracing: bool = False
    """X-Ray for the state machine and both functions (a plain value: it decides the roles'
    policies)."""
    tags: pulumi.Input[Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        # Lambda reads 0 as "never run": every image would wait a day, then fail.
        if self.concurrency < 1:
            raise ValueError(f"concurrency {self.concurrency}: at least 1")
        if not 1 <= self.inbox_days <= self.outcome_days:
            raise ValueError(
                f"inbox_days {self.inbox_days}, outcome_days {self.outcome_days}: an outcome "
                "must outlive its image, and both be at least a day"
            )


class BatchPipeline(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    """Put images under `inbox/`; outcomes appear in `results/`, `review/`, `failed/`."""
    state_machine_arn: pulumi.Output[str]
    review_topic_arn: pulumi.Output[str]
    log_group: pulumi.Output[str]
    """The workflow's execution log: every state of every image, with its input and output."""
    transform_role_arn: pulumi.Output[str] | None
    """With `transform`: the role transform jobs over the bucket run as."""

    def __init__(
        self, name: str, args: BatchPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self._name = name
        self._args = args
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        inbox = self._inbox(name, args)
        topic = self._review_topic(name, args)
        classify, record_failure = self._tasks(args, inbox)
        machine, log_group = self._workflow(name, args, account, (classify, record_failure), topic)
        self._inbox_trigger(name, args, account, inbox, machine)

        self.bucket_name = inbox.name
        self.state_machine_arn = machine.arn
        self.review_topic_arn = topic.arn
        self.log_group = log_group.name
        self.transform_role_arn = None
        if args.transform is not None:
            self.transform_role_arn = transform_role(
                self,
                f"{name}-transform",
                access=args.transform,
                bucket_arn=inbox.arn,
                name_prefix=args.name_prefix,
                account=account,
                tags=args.tags,
            ).arn
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "state_machine_arn": self.state_machine_arn,
                "review_topic_arn": self.review_topic_arn,
                "log_group": self.log_group,
                "transform_role_arn": self.transform_role_arn,
            }
        )

    def _inbox(self, name: str, args: BatchPipelineArgs) -> PrivateBucket:
        """The bucket (inbox/ in, outcomes out) and each served model version's labels."""
        child = pulumi.ResourceOptions(parent=self)
        inbox = PrivateBucket(
            f"{name}-inbox",
            PrivateBucketArgs(
                noncurrent_version_days=NONCURRENT_VERSION_DAYS,
                expirations={INBOX: args.inbox_days}
                | {folder: args.outcome_days for folder in OUTCOME_FOLDERS}
                | ({TRANSFORM: args.transform_days} if args.transform is not None else {}),
                tags=args.tags,
            ),
            opts=child,
        )
        tls_only_bucket_policy(f"{name}-inbox-policy", inbox, opts=child)
        for version, labels in sorted(args.model_labels.items()):
            key = f"{MODEL_LABELS_DIR}/{version}.json"
            aws.s3.BucketObjectv2(
                f"{name}-labels-{version}",
                bucket=inbox.name,
                key=key,
                content=pulumi.Output.from_input(labels).apply(partial(_labels_json, version)),
                content_type="application/json",
                tags=args.tags,
                # Kept when the model changes: older outcomes are reviewed with their labels.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        return inbox

    def _review_topic(self, name: str, args: BatchPipelineArgs) -> aws.sns.Topic:
        """Where images to review are announced (and mailed, with a review email)."""
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-review",
            display_name="Images to review",
            kms_master_key_id=REVIEW_TOPIC_KEY,
            tags=args.tags,
            opts=child,
        )
        if args.review_email:
            aws.sns.TopicSubscription(
                f"{name}-review-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.review_email,
                opts=child,
            )
        return topic

    def _tasks(
        self, args: BatchPipelineArgs, inbox: PrivateBucket
    ) -> tuple[aws.lambda_.Function, aws.lambda_.Function]:
        """The workflow's two task functions: classify an image, record a failure."""
        classify = self._task(
            "classify",
            CLASSIFY_HANDLER,
            statements=pulumi.Output.all(
                inbox.arn, args.endpoint_arn, args.predictions_table_arn
            ).apply(
                lambda arns: [
                    *bucket_statements(arns[0], (RESULTS, REVIEW)),
                    {
                        "Sid": "InvokeTheEndpoint",
                        "Effect": "Allow",
                        "Action": "sagemaker:InvokeEndpoint",
                        "Resource": arns[1],
                    },
                    {
                        "Sid": "RecordPredictions",
                        "Effect": "Allow",
                        "Action": "dynamodb:PutItem",
                        "Resource": arns[2],
                    },
                ]
            ),
            environment={
                **args.environment,
                "SAGEMAKER_MAX_ATTEMPTS": str(SAGEMAKER_MAX_ATTEMPTS),
                "PREDICTIONS_TABLE": args.predictions_table_name,
            },
            memory_mb=args.memory_mb,
            timeout_seconds=args.timeout_seconds,
            reserved_concurrency=args.concurrency,
        )
        record_failure = self._task(
            "record-failure",
            RECORD_FAILURE_HANDLER,
            statements=inbox.arn.apply(lambda arn: bucket_statements(arn, (FAILED,))),
            environment={},
            memory_mb=args.memory_mb,
            timeout_seconds=RECORD_FAILURE_TIMEOUT_SECONDS,
        )
        return classify, record_failure

    def _workflow(
        self,
        name: str,
        args: BatchPipelineArgs,
        account: pulumi.Output[str],
        tasks: tuple[aws.lambda_.Function, aws.lambda_.Function],
        topic: aws.sns.Topic,
    ) -> tuple[aws.sfn.StateMachine, aws.cloudwatch.LogGroup]:
        """The state machine, its role and its log group."""
        child = pulumi.ResourceOptions(parent=self)
        classify, record_failure = tasks
        # Under /aws/vendedlogs/: CloudWatch Logs then needs no resource policy per log group
        # (its size is limited), as AWS advises for vended logs.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-workflow-logs",
            name=f"/aws/vendedlogs/states/{args.name_prefix}-batch",
            retention_in_days=args.log_retention_days,
            tags=args.tags,
            opts=child,
        )
        workflow_role = aws.iam.Role(
            f"{name}-workflow-role",
            assume_role_policy=account.apply(
                lambda account_id: service_trust_policy("states.amazonaws.com", account_id)
            ),
            tags=args.tags,
            opts=child,
        )
        workflow_policy = aws.iam.RolePolicy(
            f"{name}-workflow-policy",
            role=workflow_role.id,
            policy=pulumi.Output.all(classify.arn, record_failure.arn, topic.arn).apply(
                lambda arns: policy_document(
                    {
                        "Sid": "InvokeTheTasks",
                        "Effect": "Allow",
                        "Action": "lambda:InvokeFunction",
                        "Resource": [arns[0], arns[1]],
                    },
                    {
                        "Sid": "NotifyTheReviewers",
                        "Effect": "Allow",
                        "Action": "sns:Publish",
                        "Resource": arns[2],
                    },
                    LOG_DELIVERY_STATEMENT,
                    *([WORKFLOW_TRACE_STATEMENT] if args.tracing else []),
                )
            ),
            opts=child,
        )
        machine = aws.sfn.StateMachine(
            f"{name}-workflow",
            type="STANDARD",
            role_arn=workflow_role.arn,
            definition=pulumi.Output.all(classify.arn, record_failure.arn, topic.arn).apply(
                lambda arns: json.dumps(
                    workflow_definition(
                        arns[0],
                        arns[1],
                        arns[2],
                        task_timeout_seconds=args.timeout_seconds + TASK_TIMEOUT_MARGIN_SECONDS,
                    ),
                    indent=2,
                )
            ),
            logging_configuration={
                "level": "ALL",
                # The data is keys, labels, probabilities and error messages (no image, no
                # secret), and it makes one image's way searchable across executions in
                # Logs Insights, which the per-execution history is not.
                "include_execution_data": True,
                "log_destination": log_group.arn.apply(lambda arn: f"{arn}:*"),
            },
            tracing_configuration={"enabled": args.tracing},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[workflow_policy]),
        )
        return machine, log_group

    def _inbox_trigger(
        self,
        name: str,
        args: BatchPipelineArgs,
        account: pulumi.Output[str],
        inbox: PrivateBucket,
        machine: aws.sfn.StateMachine,
    ) -> None:
        """An object created under inbox/ starts one execution, through EventBridge."""
        child = pulumi.ResourceOptions(parent=self)
        events_role = aws.iam.Role(
            f"{name}-events-role",
            assume_role_policy=account.apply(
                lambda account_id: service_trust_policy("events.amazonaws.com", account_id)
            ),
            tags=args.tags,
            opts=child,
        )
        events_policy = aws.iam.RolePolicy(
            f"{name}-events-policy",
            role=events_role.id,
            policy=machine.arn.apply(
                lambda arn: policy_document(
                    {
                        "Sid": "StartTheWorkflow",
                        "Effect": "Allow",
                        "Action": "states:StartExecution",
                        "Resource": arn,
                    }
                )
            ),
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-inbox-created",
            description="An image under inbox/ of the batch bucket: classify it",
            event_pattern=inbox.name.apply(lambda bucket: json.dumps(inbox_event_pattern(bucket))),
            tags=args.tags,
            opts=child,
        )
        # The whole event is the execution's input: both tasks read the bucket and key from
        # it, and its history keeps the object's size, ETag and version.
        aws.cloudwatch.EventTarget(
            f"{name}-inbox-created-target",
            rule=rule.name,
            arn=machine.arn,
            role_arn=events_role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[events_policy]),
        )
        aws.s3.BucketNotification(
            f"{name}-inbox-notification", bucket=inbox.name, eventbridge=True, opts=child
        )

    def _task(
        self,
        task: str,
        handler: str,
        *,
        statements: pulumi.Input[Sequence[Mapping[str, Any]]],
        environment: Mapping[str, pulumi.Input[str]],
        memory_mb: int,
        timeout_seconds: int,
        reserved_concurrency: int | None = None,
    ) -> aws.lambda_.Function:
        """One task's function, with its own role (`statements` plus writing its own log
        group) on the shared zip; both read the proxy's configuration (`proxy.config`)."""
        name, args = f"{self._name}-{task}", self._args
        execution = service_role(
            self,
            ServiceRoleNames(
                log_group=f"{name}-logs", role=f"{name}-role", policy=f"{name}-policy"
            ),
            service="lambda.amazonaws.com",
            logs=ServiceLogs(
                f"/aws/lambda/{args.name_prefix}-batch-{task}", args.log_retention_days
            ),
            statements=pulumi.Output.from_input(statements).apply(
                lambda found: [*found, *([TRACE_WRITER_STATEMENT] if args.tracing else [])]
            ),
            tags=args.tags,
        )
        return aws.lambda_.Function(
            name,
            runtime="python3.12",
            architectures=["arm64"],
            handler=handler,
            code=batch_code(args.project_dir),
            role=execution.role.arn,
            memory_size=memory_mb,
            timeout=timeout_seconds,
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "variables": {
                    "SAGEMAKER_ENDPOINT_NAME": args.endpoint_name,
                    "LOG_LEVEL": args.log_level,
                    **environment,
                }
            },
            logging_config={"log_format": "Text", "log_group": execution.log_group.name},
            # Explicit either way: leaving it out would not turn active tracing off again.
            tracing_config={"mode": "Active" if args.tracing else "PassThrough"},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[execution.policy]),
        )
