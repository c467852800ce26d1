"""The settings the code reads (shared/settings.py) and the settings the templates set are the
same set, secrets are Key Vault references, and local.settings.sample.json and docs/settings.md
list them all."""

from __future__ import annotations

import json
import re

from shared import settings
from shared.settings import SETTINGS, names

from ._tools import REPO, tree, unquote
from .settings_doc import key_vault_secret_name, render

# Settings of the table that the templates deliberately do NOT set, with the reason.
NOT_IN_AZURE = {
    "EVIDENCE_GATE_STORE": (
        "Local report store; in Azure the state is the shared Table store (EVIDENCE_GATE_STATE__tableServiceUri) "
        "and the Flex Consumption file system is read-only."
    ),
    "EVIDENCE_GATE_STATE": (
        "A storage connection string (account key) for Azurite or a developer; in Azure the state store "
        "connects with the managed identity (EVIDENCE_GATE_STATE__tableServiceUri) and shared keys are disabled."
    ),
    "EVIDENCE_GATE_INTAKE": (
        "A storage connection string (account key) for Azurite or a developer; in Azure the intake queue "
        "connects with the managed identity (EVIDENCE_GATE_INTAKE__queueServiceUri) and shared keys are disabled."
    ),
    "EVIDENCE_GATE_INTAKE_VISIBILITY_SECONDS": (
        "Read by `evidence-gate serve` only, which polls the queue itself; in Azure the Functions host keeps "
        "a message invisible while its invocation runs (host.json extensions.queues)."
    ),
    "AZURE_STORAGE_CONNECTION_STRING": (
        "A storage account key for artifacts; in Azure the Function App's managed identity reads the "
        "artifact storage accounts (Storage Blob Data Reader), so no key is deployed."
    ),
}

# App settings the templates set that Evidence Gate's code does not read: the Functions host's own.
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential": "Functions host storage, identity-based connection.",
    "AzureWebJobsStorage__clientId": "Functions host storage: the user-assigned identity.",
    "AzureWebJobsStorage__blobServiceUri": "Functions host storage: blob endpoint (leases, timer state).",
}

# Keys of local.settings.sample.json that belong to the local Functions host, not to the table.
LOCAL_HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"}

KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{secretUri\}(?P<secret>[a-z0-9-]+)\)$")


def app_settings() -> dict[str, str]:
    api = tree("infra/app/api.bicep")
    site = api["resources"]["functionApp"]["config"]["properties"]["siteConfig"]
    # the site's app settings are exactly the `appSettings` object, item by item
    loop = site["appSettings"]["loop_type"]
    assert loop["type"] == "object" and loop["detail"]["object_name"] == "appSettings"
    return {unquote(k): v for k, v in api["variables"]["appSettings"]["value"].items()}


def test_allow_lists_name_real_settings():
    assert set(NOT_IN_AZURE) <= set(names()), "NOT_IN_AZURE names a setting the table does not have"
    assert all(len(reason) > 40 for reason in NOT_IN_AZURE.values())
    assert not set(HOST_SETTINGS) & set(names()), "a host setting is also in the code's table"


def test_templates_set_exactly_the_settings_the_code_reads():
    in_templates = set(app_settings()) - set(HOST_SETTINGS)
    expected = set(names()) - set(NOT_IN_AZURE)
    assert in_templates - expected == set(), "set by infra/app/api.bicep but not in shared/settings.py"
    assert expected - in_templates == set(), "read by the code but not set by infra/app/api.bicep"
    assert set(HOST_SETTINGS) <= set(app_settings()), "a host setting of the allow-list is no longer set"


def test_secrets_are_key_vault_references_and_nothing_else_is():
    values = app_settings()
    secrets = {s.name for s in SETTINGS if s.secret}
    assert secrets, "the table declares no secret"
    for name, value in values.items():
        match = KEY_VAULT_REFERENCE.match(value) if isinstance(value, str) else None
        if name in secrets:
            assert match, f"{name} must be a Key Vault reference, got {value!r}"
            assert match["secret"] == key_vault_secret_name(name)
        else:
            assert "@Microsoft.KeyVault" not in str(value), f"{name} is not a secret in the table"
    # keyVaultReferenceIdentity: references resolve with the user-assigned identity
    props = tree("infra/app/api.bicep")["resources"]["functionApp"]["config"]["properties"]
    assert props["keyVaultReferenceIdentity"] == "identityId"


def test_service_bus_identity_based_connection():
    values = app_settings()
    prefix = settings.SERVICEBUS_CONNECTION
    assert prefix == "EVIDENCE_GATE_SERVICEBUS"
    assert values[f"{prefix}__credential"] == "managedidentity"
    assert values[f"{prefix}__clientId"] == "identityClientId"
    assert values[f"{prefix}__fullyQualifiedNamespace"] == "serviceBusFullyQualifiedNamespace"
    assert values["AZURE_CLIENT_ID"] == "identityClientId"
    assert values["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD;ClientId=${identityClientId}"
    assert values["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"


def test_state_store_identity_based_connection():
    values = app_settings()
    prefix = settings.STATE_CONNECTION
    assert prefix == "EVIDENCE_GATE_STATE"
    assert values[f"{prefix}__credential"] == "managedidentity"
    assert values[f"{prefix}__clientId"] == "identityClientId"
    uri = json.dumps(values[f"{prefix}__tableServiceUri"])
    assert '"operand_1": "stg"' in uri and '"table"' in uri, uri  # stg.properties.primaryEndpoints.table
    assert values["EVIDENCE_GATE_STATE_TABLE"] == "stateTableName"


def test_intake_identity_based_connection():
    values = app_settings()
    prefix = settings.INTAKE_CONNECTION
    assert prefix == "EVIDENCE_GATE_INTAKE"
    assert values[f"{prefix}__credential"] == "managedidentity"
    assert values[f"{prefix}__clientId"] == "identityClientId"
    uri = json.dumps(values[f"{prefix}__queueServiceUri"])
    assert '"operand_1": "stg"' in uri and '"queue"' in uri, uri  # stg.properties.primaryEndpoints.queue
    assert values["EVIDENCE_GATE_INTAKE_QUEUE"] == "intakeQueueName"
    table = {s.name: s.default for s in SETTINGS}
    assert tree("infra/app/api.bicep")["parameters"]["intakeQueueName"]["default"] == table["EVIDENCE_GATE_INTAKE_QUEUE"]
    assert tree("infra/main.bicep")["variables"]["intakeQueueName"]["value"] == table["EVIDENCE_GATE_INTAKE_QUEUE"]
    for name in ("EVIDENCE_GATE_INTAKE_MAX_AGE_MINUTES", "EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS"):
        assert values[name] == table[name]


def test_template_defaults_match_the_table():
    table = {s.name: s.default for s in SETTINGS}
    main = tree("infra/main.bicep")["parameters"]
    assert main["topicName"]["default"] == table["EVIDENCE_GATE_TOPIC"]
    assert main["reconcileSchedule"]["default"] == table["EVIDENCE_GATE_RECONCILE_SCHEDULE"]
    servicebus = tree("infra/core/servicebus/servicebus.bicep")["parameters"]
    assert servicebus["topicName"]["default"] == table["EVIDENCE_GATE_TOPIC"]
    api = tree("infra/app/api.bicep")["parameters"]
    assert api["reconcileSchedule"]["default"] == table["EVIDENCE_GATE_RECONCILE_SCHEDULE"]
    assert api["stateTableName"]["default"] == table["EVIDENCE_GATE_STATE_TABLE"]
    assert tree("infra/main.bicep")["variables"]["stateTableName"]["value"] == table["EVIDENCE_GATE_STATE_TABLE"]


def test_local_settings_sample_lists_every_setting():
    sample = json.loads((REPO / "local.settings.sample.json").read_text())
    assert sample["IsEncrypted"] is False
    values = sample["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert "AzureWebJobsStorage" in values
    assert set(names()) - set(values) == set(), "missing from local.settings.sample.json"
    assert set(values) - set(names()) - LOCAL_HOST_SETTINGS == set(), "not in shared/settings.py"
    assert all(isinstance(v, str) for v in values.values()), "Functions settings values are strings"
    for s in SETTINGS:
        if s.default:
            assert values[s.name] == s.default, f"{s.name}: sample differs from the table's default"
        if s.secret and values[s.name]:
            assert values[s.name].startswith("local-dev-only-"), f"{s.name}: sample must be an obvious placeholder"


def test_settings_doc_is_generated_from_the_table():
    doc = (REPO / "docs" / "settings.md").read_text()
    assert doc == render(), "docs/settings.md is stale: .venv/bin/python -m tests.infra.settings_doc > docs/settings.md"
    for name in names():
        assert f"`{name}`" in doc


def test_azd_environment_names_in_the_doc_are_wired_in_the_parameters_file():
    parameters = (REPO / "infra" / "main.parameters.json").read_text()
    for line in render().splitlines():
        for env_name in re.findall(r"azd env `([A-Z_]+)`", line):
            assert "${" + env_name in parameters, f"{env_name} is documented but not in main.parameters.json"


def test_deploy_doc_covers_every_secret_and_route():
    doc = (REPO / "docs" / "deploy.md").read_text()
    hook = (REPO / "infra" / "hooks" / "postprovision.sh").read_text()
    for s in SETTINGS:
        if s.secret and s.name not in NOT_IN_AZURE:
            secret = key_vault_secret_name(s.name)
            assert f"`{secret}`" in doc, f"docs/deploy.md does not say how to set or rotate {secret}"
            assert secret in hook, f"the postprovision hook neither creates nor reports {secret}"
    for route in ("webhooks/mlflow", "webhooks/databricks/registry", "webhooks/databricks/jobs"):
        assert f"/api/{route}" in doc
    assert "azd up" in doc and "## Rotating secrets" in doc
