"""The CloudFormation template in deploy/aws: cfn-lint clean, the table exactly `table_spec`'s
(deployed into the emulator, `describe_table` finds no difference), least-privilege policies
that still allow every call the server and the operator commands make, and alarms whose metric,
threshold and period are the operations guide's (`vexil.observability.thresholds`).

The emulator's CloudFormation ignores PointInTimeRecoverySpecification and creates no
AWS::CloudWatch::Alarm, so those are checked from the template text."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml

from tests.support.dynamo import REGION
from vexil.observability import cloudwatch
from vexil.observability import thresholds as t
from vexil.store.dynamodb_table import describe_table, table_spec

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "aws" / "vexil.yaml"
ENVIRONMENT = "prod"
TABLE = f"feature-flags-{ENVIRONMENT}"
NAMESPACE = f"Vexil/{ENVIRONMENT}"
TTL_ATTRIBUTE = "expiresAt"
"""The change log's retention attribute (epoch seconds); API keys keep their own `expiresAt` as
an ISO string, which DynamoDB's TTL ignores, so enabling TTL on it never expires a key."""
STACK_TIMEOUT_S = 30.0

# The calls vexil makes, written out from the code (store/dynamodb.py, store/keys_dynamodb.py for
# the server; ops/backups.py, ops/tables.py, ops/drill.py, store/dynamodb_table.py for operators).
# `TransactWriteItems` is authorised by its parts (Put, Update, Delete, ConditionCheck).
SERVER_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DescribeTable",
    "cloudwatch:PutMetricData",
}
OPERATOR_ACTIONS = {
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:CreateBackup",
    "dynamodb:DescribeBackup",
    "dynamodb:ListBackups",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DeleteTable",
}
TABLE_MANAGEMENT = {
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:CreateBackup",
    "dynamodb:DeleteBackup",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:RestoreTableToPointInTime",
}


def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in template()["Resources"].items() if r["Type"] == kind}


def subbed(value: Any, environment: str = ENVIRONMENT) -> Any:
    """A `Fn::Sub` string with the Environment parameter filled in (other values as they are)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${Environment}", environment)
    return value


def seconds(duration: str) -> int:
    """A Prometheus `for:` duration ("2m", "1m", "90s") in seconds."""
    found = re.fullmatch(r"(\d+)([sm])", duration)
    assert found, duration
    return int(found.group(1)) * (60 if found.group(2) == "m" else 1)


def test_cfn_lint_passes() -> None:
    linter = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(linter), "--regions", REGION, "us-east-1", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_table_is_table_spec_with_pitr_and_ttl() -> None:
    (table,) = resources("AWS::DynamoDB::Table").values()
    spec = table_spec(TABLE)
    assert subbed(table["TableName"]) == spec["TableName"]
    assert table["BillingMode"] == spec["BillingMode"]
    assert table["KeySchema"] == spec["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(spec["AttributeDefinitions"], key=str)
    assert table["GlobalSecondaryIndexes"] == spec["GlobalSecondaryIndexes"]
    assert table["StreamSpecification"] == {"StreamViewType": spec["StreamSpecification"]["StreamViewType"]}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in found)
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def policy(name: str) -> list[dict[str, Any]]:
    return statements(resources("AWS::IAM::ManagedPolicy")[name])


def test_server_policy_is_least_privilege() -> None:
    found = policy("ServerPolicy")
    granted = set().union(*(actions(s) for s in found))
    assert granted == SERVER_ACTIONS
    assert not granted & TABLE_MANAGEMENT
    assert not any("*" in action for action in granted)
    for statement in found:
        if actions(statement) == {"cloudwatch:PutMetricData"}:  # only into vexil's namespace
            condition = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
            assert subbed(condition) == NAMESPACE
            continue
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for target in targets:  # the stack's table or its indexes, nothing else
            assert target in ({"Fn::GetAtt": ["FlagsTable", "Arn"]}, {"Fn::Sub": "${FlagsTable.Arn}/index/*"})
        if {"dynamodb:Query", "dynamodb:Scan"} & actions(statement):
            assert {"Fn::Sub": "${FlagsTable.Arn}/index/*"} in targets  # GSI queries
        else:
            assert targets == [{"Fn::GetAtt": ["FlagsTable", "Arn"]}]  # items live in the table


def test_operator_policy_allows_the_operator_commands_only_on_vexils_tables() -> None:
    found = policy("OperatorPolicy")
    granted = set().union(*(actions(s) for s in found))
    assert granted == OPERATOR_ACTIONS
    table_arn = (
        "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/feature-flags-${Environment}"
    )
    for statement in found:
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if actions(statement) == {"dynamodb:ListBackups"}:
            assert targets == ["*"]  # ListBackups has no resource-level permission
            continue
        for target in targets:
            assert target["Fn::Sub"].startswith(table_arn), target
        if "dynamodb:DeleteTable" in actions(statement):  # restored and drill tables, never the live one
            assert targets == [{"Fn::Sub": table_arn + "-*"}]


def called_operations(*paths: str) -> set[str]:
    """`client.some_call(` and `_call("...", "some_call"` in the given modules, as IAM action names."""
    found: set[str] = set()
    for path in paths:
        text = (ROOT / "server" / "vexil" / path).read_text()
        names = re.findall(r"client\.([a-z_]+)\(", text) + re.findall(r'_call\(\s*[^,]+,\s*"([a-z_]+)"', text)
        found |= {"dynamodb:" + "".join(part.title() for part in name.split("_")) for name in names}
    return found


def test_policies_cover_every_call_in_the_code() -> None:
    """A call added to the store or the operator commands without its permission fails here."""
    server = called_operations("store/dynamodb.py", "store/keys_dynamodb.py")
    transact_parts = {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }
    assert "dynamodb:TransactWriteItems" in server
    server = server - {"dynamodb:TransactWriteItems"} | transact_parts
    assert server <= SERVER_ACTIONS, server - SERVER_ACTIONS
    operator = called_operations(
        "ops/backups.py", "ops/tables.py", "ops/drill.py", "ops/gather.py", "store/dynamodb_table.py"
    )
    assert operator <= OPERATOR_ACTIONS, operator - OPERATOR_ACTIONS


# The alarms: metric(s), the guide's threshold, the window it must hold for, and which side is bad.
ALARMS = {
    "LatencyAlarm": ({cloudwatch.LATENCY_P99}, t.LATENCY_P99.critical, seconds(t.LATENCY_ALERT_FOR), "above"),
    "ThrottleAlarm": (
        {cloudwatch.DYNAMODB_THROTTLES},
        t.DYNAMODB_THROTTLES.warning,
        seconds(t.THROTTLE_ALERT_FOR),
        "above",
    ),
    "ErrorRateAlarm": (
        {cloudwatch.SERVER_ERRORS, cloudwatch.REQUESTS},
        t.ERROR_RATE.warning,
        seconds(t.ERROR_RATE_ALERT_FOR),
        "above",
    ),
    # Availability is judged over the last hour (as the Prometheus rule's ratio_rate1h).
    "AvailabilityAlarm": (
        {cloudwatch.SERVER_ERRORS, cloudwatch.REQUESTS},
        t.AVAILABILITY.target,
        3600,
        "below",
    ),
    "SnapshotAgeAlarm": ({cloudwatch.SNAPSHOT_AGE}, t.SNAPSHOT_AGE.critical, 60, "above"),
}
OPERATORS = {"above": "GreaterThanThreshold", "below": "LessThanThreshold"}


def alarm_metrics(alarm: dict[str, Any]) -> tuple[set[str], set[int], set[str]]:
    """Metric names, periods and namespaces an alarm reads (a single metric or metric math)."""
    if "MetricName" in alarm:
        return {alarm["MetricName"]}, {alarm["Period"]}, {subbed(alarm["Namespace"])}
    stats = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    returned = [m for m in alarm["Metrics"] if m.get("ReturnData", True)]
    assert len(returned) == 1 and "Expression" in returned[0]
    return (
        {s["Metric"]["MetricName"] for s in stats},
        {s["Period"] for s in stats},
        {subbed(s["Metric"]["Namespace"]) for s in stats},
    )


def test_alarms_use_the_guides_thresholds_on_metrics_vexil_publishes() -> None:
    alarms = resources("AWS::CloudWatch::Alarm")
    assert set(alarms) == set(ALARMS)
    topic = {"Ref": "AlarmTopic"}
    for name, (metrics, threshold, window, worse) in ALARMS.items():
        alarm = alarms[name]
        names, periods, namespaces = alarm_metrics(alarm)
        assert names == metrics, name
        assert names <= set(cloudwatch.METRIC_NAMES), name
        assert namespaces == {NAMESPACE}, name
        assert alarm["Threshold"] == threshold, name
        assert alarm["ComparisonOperator"] == OPERATORS[worse], name
        (period,) = periods
        assert period * alarm["EvaluationPeriods"] == window, name
        assert alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) == alarm["EvaluationPeriods"], name
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], name
        if name != "SnapshotAgeAlarm":  # the publisher sends these without dimensions
            stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
            assert "Dimensions" not in alarm and not any("Dimensions" in m for m in stats), name
    age = alarms["SnapshotAgeAlarm"]["Dimensions"]
    assert age == [{"Name": cloudwatch.ENVIRONMENT_DIMENSION, "Value": {"Ref": "Environment"}}]


def test_outputs_name_the_namespace_the_server_publishes_to() -> None:
    outputs = template()["Outputs"]
    assert subbed(outputs["MetricsNamespace"]["Value"]) == NAMESPACE


async def test_stack_deploys_and_describe_finds_no_difference(aws_endpoint: str) -> None:
    formation = boto3.client("cloudformation", region_name=REGION, endpoint_url=aws_endpoint)
    formation.create_stack(
        StackName="vexil-prod",
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],  # the two managed policies
        Parameters=[{"ParameterKey": "Environment", "ParameterValue": ENVIRONMENT}],
    )
    deadline = time.monotonic() + STACK_TIMEOUT_S
    while True:
        stack = formation.describe_stacks(StackName="vexil-prod")["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["TableName"] == TABLE
    assert outputs["MetricsNamespace"] == NAMESPACE

    report = await describe_table(TABLE, region=REGION, endpoint_url=aws_endpoint)
    assert report["problems"] == []
    spec = table_spec(TABLE)
    assert report["status"] == "ACTIVE"
    assert report["billing"] == spec["BillingMode"]
    assert {i["name"]: i["keys"] for i in report["indexes"]} == {
        index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
        for index in spec["GlobalSecondaryIndexes"]
    }
    assert report["streams"]["enabled"] is True
    assert report["streams"]["viewType"] == spec["StreamSpecification"]["StreamViewType"]

    topics = boto3.client("sns", region_name=REGION, endpoint_url=aws_endpoint).list_topics()["Topics"]
    assert outputs["AlarmTopicArn"] in {topic["TopicArn"] for topic in topics}
    iam = boto3.client("iam", region_name=REGION, endpoint_url=aws_endpoint)
    for key in ("ServerPolicyArn", "OperatorPolicyArn"):
        assert iam.get_policy(PolicyArn=outputs[key])["Policy"]["Arn"] == outputs[key]
