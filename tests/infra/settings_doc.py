"""Renders docs/settings.md from the settings table (shared/settings.py).

Regenerate after changing the table:  .venv/bin/python -m tests.infra.settings_doc > docs/settings.md
(tests/infra/test_settings_contract.py fails while the file is out of date).
"""

from __future__ import annotations

from shared.settings import SETTINGS

# Where each setting comes from in Azure (infra/app/api.bicep) when it is not just a parameter.
AZURE_SOURCE = {
    "MLFLOW_TRACKING_URI": "azd env `MLFLOW_TRACKING_URI`; default: the Azure ML workspace's `azureml://` URI",
    "EVIDENCE_GATE_REGISTRIES": "azd env `EVIDENCE_GATE_REGISTRIES`; default: the tracking URI",
    "EVIDENCE_GATE_AZUREML_REGION": "the Azure ML workspace's region",
    "EVIDENCE_GATE_STORE": "not set in Azure (the state is the shared Table store; local only)",
    "EVIDENCE_GATE_STATE": "not set in Azure (identity-based: `EVIDENCE_GATE_STATE__tableServiceUri`)",
    "EVIDENCE_GATE_STATE__tableServiceUri": "the storage account's table endpoint",
    "EVIDENCE_GATE_STATE__credential": "`managedidentity`",
    "EVIDENCE_GATE_STATE__clientId": "the user-assigned identity",
    "EVIDENCE_GATE_STATE_TABLE": "the provisioned table",
    "EVIDENCE_GATE_INTAKE": "not set in Azure (identity-based: `EVIDENCE_GATE_INTAKE__queueServiceUri`)",
    "EVIDENCE_GATE_INTAKE__queueServiceUri": "the storage account's queue endpoint",
    "EVIDENCE_GATE_INTAKE__credential": "`managedidentity`",
    "EVIDENCE_GATE_INTAKE__clientId": "the user-assigned identity",
    "EVIDENCE_GATE_INTAKE_QUEUE": "the provisioned queue (its poison queue `<name>-poison` too)",
    "EVIDENCE_GATE_INTAKE_MAX_AGE_MINUTES": "`60` (infra/app/api.bicep)",
    "EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS": "`60` (infra/app/api.bicep)",
    "EVIDENCE_GATE_INTAKE_VISIBILITY_SECONDS": "not set in Azure (`evidence-gate serve` only; the host keeps a message invisible while it runs)",
    "EVIDENCE_GATE_CHECK_DEADLINE_SECONDS": "`30` (infra/app/api.bicep)",
    "EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS": "`120` (infra/app/api.bicep)",
    "AZURE_STORAGE_CONNECTION_STRING": "not set in Azure (the managed identity reads artifact storage accounts)",
    "EVIDENCE_GATE_TOPIC": "the provisioned topic",
    "EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace": "the provisioned namespace",
    "EVIDENCE_GATE_SERVICEBUS__credential": "`managedidentity`",
    "EVIDENCE_GATE_SERVICEBUS__clientId": "the user-assigned identity",
    "AZURE_CLIENT_ID": "the user-assigned identity",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the provisioned Application Insights",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "`Authorization=AAD;ClientId=` the user-assigned identity",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "`true`",
    "EVIDENCE_GATE_LOG_ANALYTICS_WORKSPACE_ID": "the provisioned Log Analytics workspace",
}


def key_vault_secret_name(setting: str) -> str:
    """Key Vault secret names allow only letters, digits and '-'."""
    return setting.lower().replace("_", "-")


def azure_source(setting) -> str:
    if setting.name in AZURE_SOURCE:
        return AZURE_SOURCE[setting.name]
    if setting.secret:
        return f"Key Vault reference to secret `{key_vault_secret_name(setting.name)}`"
    return f"azd env `{setting.name}` (parameter of infra/main.bicep)"


def render() -> str:
    lines = [
        "# Settings",
        "",
        "<!-- Generated from shared/settings.py by `python -m tests.infra.settings_doc`; do not edit. -->",
        "",
        "Every setting Evidence Gate reads. Locally they come from the environment or",
        "`local.settings.json` (copy `local.settings.sample.json`); in Azure `infra/` sets them as app",
        "settings. Secrets are Key Vault references there, never values.",
        "",
        "| setting | secret | default | description | in Azure |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else ""
        secret = "yes" if s.secret else ""
        lines.append(f"| `{s.name}` | {secret} | {default} | {s.description} | {azure_source(s)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
