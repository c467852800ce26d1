"""infra/ checked offline: every Bicep file parses (pycep-parser), checkov finds no failed check
(skips are inline, with a reason, and still needed), and the resources are configured as the
deployment contract says."""

from __future__ import annotations

import json
import re
import shutil
import stat

import pytest
import yaml

from ._tools import INFRA, REPO, bicep_files, bicep_string, parse_all, run_checkov, tree

# Checks that checkov evaluates inconsistently: they may pass even without their skip comment.
UNSTABLE_CHECKS = {
    "CKV_AZURE_43": "storage account naming: checkov evaluates the interpolated name only on some hash "
    "seeds; the rule itself is asserted in test_storage_account_name_follows_the_rules",
}

ROLE = {
    "reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "storageQueueDataReader": "19e7f393-937e-4f77-808e-94535e297925",
    "storageQueueDataMessageProcessor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    "storageQueueDataMessageSender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "serviceBusDataSender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    "serviceBusDataReceiver": "4f6d3b08-988c-4ac9-8a1d-ebf54d4f8de2",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "logAnalyticsReader": "73c42c96-874c-492b-b04d-ab87d138a893",
}
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}


def accessor(operand: str, prop: str) -> dict:
    """pycep's form of `operand.prop`."""
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": operand, "operand_2": prop}}}


def iso8601_seconds(duration: str) -> int:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", duration)
    assert match and duration not in ("P", "PT"), f"not an ISO 8601 duration: {duration}"
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


# --- parsing and checkov -------------------------------------------------------------------------


def test_every_bicep_file_parses():
    parsed = parse_all()
    assert len(parsed) == len(bicep_files()) >= 11
    failures = {path: result["error"] for path, result in parsed.items() if not result["ok"]}
    assert failures == {}
    assert "infra/main.bicep" in parsed


def test_modules_referenced_by_main_exist():
    modules = tree("infra/main.bicep")["modules"]
    assert len(modules) >= 10
    for name, module in modules.items():
        assert module["type"] == "local", f"module {name} is not local: offline checks cannot see it"
        assert (INFRA / module["detail"]["path"]).is_file(), module["detail"]["path"]


@pytest.fixture(scope="module")
def checkov_report():
    return run_checkov(INFRA)


def test_checkov_reports_no_failed_check(checkov_report):
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in checkov_report["results"]["failed_checks"]]
    assert failed == [] and summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 20 and summary["resource_count"] > 0


def test_checkov_skips_are_inline_with_a_reason(checkov_report):
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped, "expected the documented inline skips"
    for check in skipped:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert reason != "No comment provided" and len(reason) >= 40, f"{check['check_id']}: no written reason"


def test_checkov_skips_are_still_needed(checkov_report, tmp_path):
    """Without its skip comment, every skipped check fails: no stale skip hides a passing check."""
    stripped = tmp_path / "infra"
    shutil.copytree(INFRA, stripped)
    for path in stripped.rglob("*.bicep"):
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if "checkov:skip=" not in line))
    report = run_checkov(stripped)
    assert report["summary"]["skipped"] == 0
    failing = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    for check in checkov_report["results"]["skipped_checks"]:
        if check["check_id"] in UNSTABLE_CHECKS:
            continue
        assert (check["check_id"], check["resource"]) in failing, f"stale skip: {check['check_id']} passes"


# --- the deployment contract ---------------------------------------------------------------------


def test_storage_account_name_follows_the_rules():
    name = tree("infra/main.bicep")["modules"]["storage"]["config"]["params"]["name"]
    prefix, token = name.split("${")
    assert token == "resourceToken}" and re.fullmatch(r"[a-z0-9]+", prefix)
    assert len(prefix) + 13 <= 24  # uniqueString() returns 13 characters
    resource_token = tree("infra/main.bicep")["variables"]["resourceToken"]["value"]
    assert "to_lower" in json.dumps(resource_token) and "unique_string" in json.dumps(resource_token)


def test_storage_denies_shared_key_and_public_blobs():
    storage = tree("infra/core/storage/storage-account.bicep")["resources"]
    props = storage["storage"]["config"]["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert storage["blobContainers"]["config"]["config"]["properties"]["publicAccess"] == "None"


def test_function_app_on_flex_consumption():
    api = tree("infra/app/api.bicep")
    plan = api["resources"]["plan"]["config"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["properties"]["reserved"] is True
    site = api["resources"]["functionApp"]
    assert site["type"] == "Microsoft.Web/sites"
    assert site["config"]["kind"] == "functionapp,linux"
    assert site["config"]["identity"]["type"] == "UserAssigned"
    props = site["config"]["properties"]
    assert props["httpsOnly"] is True
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    # instance memory, maximum instance count and HTTP concurrency per instance are parameters
    assert config["scaleAndConcurrency"] == {"instanceMemoryMB": "instanceMemoryMB", "maximumInstanceCount": "maximumInstanceCount",
                                             "triggers": {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}}}
    scale = {"instanceMemoryMB", "maximumInstanceCount", "httpPerInstanceConcurrency"}
    assert scale <= set(api["parameters"])
    main = tree("infra/main.bicep")["parameters"]
    assert scale <= set(main)
    # the measured defaults (docs/performance.md): 512 MB instances
    assert api["parameters"]["instanceMemoryMB"]["default"] == main["instanceMemoryMB"]["default"] == 512
    assert api["parameters"]["httpPerInstanceConcurrency"]["default"] == main["httpPerInstanceConcurrency"]["default"]
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}


def test_host_json():
    host = json.loads((REPO / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    hours, minutes, seconds = (int(x) for x in host["functionTimeout"].split(":"))
    assert 0 < hours * 3600 + minutes * 60 + seconds <= 30 * 60
    queues = host["extensions"]["queues"]  # the intake trigger (docs/deploy.md "Durable intake")
    assert queues["messageEncoding"] == "base64"  # what shared/intake/queue.py writes
    assert queues["maxDequeueCount"] >= 1
    # a re-check made visible after its backoff (at most 30 s) is polled within a minute of the outage's end
    hours, minutes, seconds = (int(x) for x in queues["maxPollingInterval"].split(":"))
    assert hours * 3600 + minutes * 60 + seconds <= 10


def test_monitoring_is_workspace_based_with_entra_auth():
    resources = tree("infra/core/monitor/monitoring.bicep")["resources"]
    props = resources["applicationInsights"]["config"]["properties"]
    assert props["DisableLocalAuth"] is True
    assert props["WorkspaceResourceId"] == accessor("logAnalytics", "id")


def test_service_bus_topic_and_subscriptions():
    servicebus = tree("infra/core/servicebus/servicebus.bicep")
    resources = servicebus["resources"]
    namespace = resources["namespace"]["config"]
    assert namespace["sku"]["name"] == "Standard" and namespace["properties"]["disableLocalAuth"] is True
    topic = resources["topic"]["config"]["properties"]
    assert topic["requiresDuplicateDetection"] is True
    assert topic["duplicateDetectionHistoryTimeWindow"] == "duplicateDetectionWindow"
    window = servicebus["parameters"]["duplicateDetectionWindow"]["default"]
    assert iso8601_seconds(window) >= 3600
    assert iso8601_seconds(tree("infra/main.bicep")["parameters"]["duplicateDetectionWindow"]["default"]) >= 3600

    subscriptions = {
        r["config"]["name"]: r for r in resources.values() if r["type"] == "Microsoft.ServiceBus/namespaces/topics/subscriptions"
    }
    assert set(subscriptions) == {"teams", "audit"}
    for sub in subscriptions.values():
        props = sub["config"]["properties"]
        assert props["maxDeliveryCount"] == "maxDeliveryCount"
        assert props["deadLetteringOnMessageExpiration"] is True
    assert servicebus["parameters"]["maxDeliveryCount"]["default"] >= 1

    rules = [r for r in resources.values() if r["type"] == "Microsoft.ServiceBus/namespaces/topics/subscriptions/rules"]
    assert len(rules) == 1, "only `teams` filters; `audit` keeps the accept-all default rule"
    (rule,) = rules
    assert rule["config"]["parent"] == "teamsSubscription"
    assert rule["config"]["name"] == "$Default", "must replace the accept-all $Default rule, not add to it"
    assert rule["config"]["properties"]["filterType"] == "SqlFilter"
    assert bicep_string(rule["config"]["properties"]["sqlFilter"]["sqlExpression"]) == "verdict <> 'pass'"


def test_event_grid_subscription_to_azureml_events():
    events = tree("infra/app/azureml-events.bicep")
    topic = events["resources"]["systemTopic"]["config"]
    assert topic["properties"]["topicType"] == "Microsoft.MachineLearningServices.Workspaces"
    assert topic["properties"]["source"] == accessor("workspace", "id")
    subscription = events["resources"]["subscription"]
    props = subscription["config"]["config"]["properties"]  # conditional resource: config.config
    assert props["destination"]["endpointType"] == "AzureFunction"
    assert props["destination"]["properties"]["resourceId"] == "${functionAppId}/functions/${functionName}"
    assert events["parameters"]["functionName"]["default"] == "azureml_events"
    assert set(props["filter"]["includedEventTypes"]) == {
        "Microsoft.MachineLearningServices.ModelRegistered",
        "Microsoft.MachineLearningServices.ModelDeployed",
        "Microsoft.MachineLearningServices.RunCompleted",
        "Microsoft.MachineLearningServices.RunStatusChanged",
    }
    assert set(props["retryPolicy"]) == {"maxDeliveryAttempts", "eventTimeToLiveInMinutes"}
    dead_letter = props["deadLetterWithResourceIdentity"]
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert dead_letter["identity"]["type"] == "UserAssigned"
    main = tree("infra/main.bicep")
    assert "azureMlWorkspaceId" in main["parameters"]
    assert main["modules"]["azureMlEvents"]["config"]["params"]["deadLetterContainerName"] == "deadLetterContainerName"


def test_key_vault_rbac_mode():
    props = tree("infra/core/security/keyvault.bicep")["resources"]["vault"]["config"]["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True and props["enableSoftDelete"] is True
    assert "accessPolicies" not in props


def role_ids() -> list[str]:
    found = []
    for relative in ("infra/app/rbac.bicep", "infra/app/azureml-workspace.bicep"):
        found += re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", (REPO / relative).read_text())
    return found


def test_role_assignments_are_least_privilege():
    ids = set(role_ids())
    assert ids == set(ROLE.values()), f"unexpected roles: {ids ^ set(ROLE.values())}"
    assert not ids & set(BROAD_ROLES), "broad roles are not needed"
    rbac = tree("infra/app/rbac.bicep")["resources"]
    scopes = {
        name: r["config"].get("scope") or r["config"].get("config", {}).get("scope")
        for name, r in rbac.items()
        if r["type"] == "Microsoft.Authorization/roleAssignments"
    }
    assert scopes["topicSender"] == "topic"
    assert scopes["teamsReceiver"] == "teamsSubscription"
    assert scopes["secretsUser"] == "vault"
    assert scopes["metricsPublisher"] == "applicationInsights"
    assert scopes["stateTableData"] == "stateTable"  # the state table only, not the account's tables
    # the intake queue and its poison queue only; no Storage Queue Data Contributor
    assert {n: scopes[n] for n in ("intakeReader", "intakeProcessor", "intakeSender", "poisonSender")} == {
        "intakeReader": "intakeQueue", "intakeProcessor": "intakeQueue", "intakeSender": "intakeQueue",
        "poisonSender": "poisonQueue"}
    workspace = tree("infra/app/azureml-workspace.bicep")["resources"]["workspaceReader"]["config"]
    assert workspace["scope"] == "workspace"


def test_no_secret_in_templates():
    for path in [*bicep_files(), INFRA / "main.parameters.json"]:
        text = path.read_text()
        assert "@secure" not in text, f"{path.name}: no secret parameter: secrets go to Key Vault, not templates"
        assert not re.search(r"AccountKey=|SharedAccessKey=|listKeys\(|listSecrets\(", text), path.name
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main_params = tree("infra/main.bicep")["parameters"]
    for name, value in parameters.items():
        assert name in main_params, f"main.parameters.json sets unknown parameter {name}"
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", value["value"]), f"{name}: only azd environment references"
    required = {name for name, p in main_params.items() if p["default"] is None}
    assert required <= set(parameters), f"required parameters without a value: {required - set(parameters)}"


def test_azure_yaml_and_hooks():
    azure = yaml.safe_load((REPO / "azure.yaml").read_text())
    assert azure["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    assert azure["infra"]["path"] == "infra" and azure["infra"]["module"] == "main"
    for hook in azure["hooks"].values():
        script = REPO / hook["run"]
        assert script.is_file() and script.stat().st_mode & stat.S_IXUSR, hook["run"]
        assert script.read_text().startswith("#!/bin/sh\nset -eu") or "set -eu" in script.read_text()
    assert "EVIDENCE_GATE_EVENTGRID_SUBSCRIPTION" in (INFRA / "hooks" / "postdeploy.sh").read_text()
    assert "${EVIDENCE_GATE_EVENTGRID_SUBSCRIPTION=false}" in (INFRA / "main.parameters.json").read_text()
    funcignore = (REPO / ".funcignore").read_text().split()
    assert {"tests", "infra", ".venv", ".venv-tools"} <= set(funcignore)
