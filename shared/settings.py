"""Every setting Evidence Gate reads, in one place.

The product reads its configuration only through :func:`get` (and :func:`get_secret`), so this
table is the complete list: ``local.settings.sample.json``, the Bicep app settings and the docs
are checked against it in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    default: str | None = None
    secret: bool = False


SERVICEBUS_CONNECTION = "EVIDENCE_GATE_SERVICEBUS"
"""Name of the identity-based Service Bus connection (Functions convention: ``<name>__fullyQualifiedNamespace``)."""

INTAKE_CONNECTION = "EVIDENCE_GATE_INTAKE"
"""Name of the intake queue connection (Functions convention: a connection string, or ``<name>__queueServiceUri``)."""

STATE_CONNECTION = "EVIDENCE_GATE_STATE"
"""Name of the state-store connection (Functions convention: a connection string, or ``<name>__tableServiceUri``)."""

SETTINGS: tuple[Setting, ...] = (
    Setting("MLFLOW_TRACKING_URI", "Default registry: an MLflow server URL, `databricks`, `databricks-uc` or an `azureml://` URI."),
    Setting("MLFLOW_WEBHOOK_SECRET", "Secret of the open-source MLflow webhook (X-MLflow-Signature).", secret=True),
    Setting("DATABRICKS_HOST", "Databricks workspace URL, for the `databricks` registry and UI links."),
    Setting("DATABRICKS_CLIENT_ID", "Databricks service principal (OAuth M2M) used by databricks-sdk authentication."),
    Setting("DATABRICKS_CLIENT_SECRET", "Databricks service principal OAuth secret.", secret=True),
    Setting("DATABRICKS_WEBHOOK_SECRET", "Secret of the Databricks Model Registry webhook (X-Databricks-Signature).", secret=True),
    Setting("DATABRICKS_JOBS_WEBHOOK_USERNAME", "Basic-auth user name configured on the Databricks job notification destination."),
    Setting("DATABRICKS_JOBS_WEBHOOK_PASSWORD", "Basic-auth password configured on the Databricks job notification destination.", secret=True),
    Setting("EVIDENCE_GATE_POLICY", "Path of the policy YAML file; the built-in default policy applies when unset."),
    Setting("EVIDENCE_GATE_WAIVERS", "Path of the waivers YAML file (overrides the policy's `waivers_file`)."),
    Setting("EVIDENCE_GATE_STORE", "Local report store (SQLite) path, used when no shared state store (`EVIDENCE_GATE_STATE`) is configured.", default=".evidence-gate/reports.sqlite"),
    Setting(STATE_CONNECTION, "Shared state store as an Azure Storage connection string (Azurite, or an account key); prefer the identity-based `EVIDENCE_GATE_STATE__tableServiceUri` in Azure.", secret=True),
    Setting(f"{STATE_CONNECTION}__tableServiceUri", "Table service URI of the shared state store (`https://<account>.table.core.windows.net`, identity-based connection); required in Azure."),
    Setting(f"{STATE_CONNECTION}__credential", "`managedidentity` in Azure (Functions identity-based connection convention)."),
    Setting(f"{STATE_CONNECTION}__clientId", "Client id of the user-assigned managed identity used for the state store."),
    Setting("EVIDENCE_GATE_STATE_TABLE", "Table of the shared state store.", default="evidencegate"),
    Setting(INTAKE_CONNECTION, "Intake queue as an Azure Storage connection string (Azurite, or an account key); prefer the identity-based `EVIDENCE_GATE_INTAKE__queueServiceUri` in Azure. Unset (with no `__queueServiceUri`): deliveries are checked synchronously.", secret=True),
    Setting(f"{INTAKE_CONNECTION}__queueServiceUri", "Queue service URI of the intake queue (`https://<account>.queue.core.windows.net`, identity-based connection): deliveries are queued and answered 202."),
    Setting(f"{INTAKE_CONNECTION}__credential", "`managedidentity` in Azure (Functions identity-based connection convention)."),
    Setting(f"{INTAKE_CONNECTION}__clientId", "Client id of the user-assigned managed identity used for the intake queue."),
    Setting("EVIDENCE_GATE_INTAKE_QUEUE", "Intake queue name; its poison queue is `<name>-poison`.", default="evidence-gate-intake"),
    Setting("EVIDENCE_GATE_INTAKE_MAX_AGE_MINUTES", "How long a delivery that keeps failing with a retryable error is retried before it is dead-lettered (minutes).", default="60"),
    Setting("EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS", "First re-check of a version whose source run is still running (seconds; later re-checks wait as long as the version has already waited, up to 10 min).", default="60"),
    Setting("EVIDENCE_GATE_INTAKE_VISIBILITY_SECONDS", "`evidence-gate serve` only: how long a received intake message stays invisible to other instances while it is checked (seconds).", default="300"),
    Setting("EVIDENCE_GATE_REGISTRIES", "Comma-separated registries the reconcile timer sweeps; defaults to MLFLOW_TRACKING_URI."),
    Setting("EVIDENCE_GATE_UC_SCHEMAS", "Comma-separated Unity Catalog schemas (`catalog.schema`) and catalogs (`catalog`: each of its schemas) the reconcile sweep of a `databricks-uc` registry lists; unset: every model the identity may see."),
    Setting("EVIDENCE_GATE_DATABRICKS_WORKSPACES", "Comma-separated `<workspace id>=<host or ~/.databrickscfg profile>`: other Databricks workspaces where a Unity Catalog version's run is read (`run_workspace_id`); unset: such a run is reported unreadable (EVD-008)."),
    Setting("EVIDENCE_GATE_CHECK_DEADLINE_SECONDS", "Deadline of one event-driven or CLI check, across every registry request and retry (seconds).", default="30"),
    Setting("EVIDENCE_GATE_RECONCILE_DEADLINE_SECONDS", "Deadline of each check of a reconcile sweep (seconds).", default="120"),
    Setting("AZURE_STORAGE_CONNECTION_STRING", "Local only: connection string of a storage account that holds model artifacts, used for that account instead of the identity (Azurite). Never printed."),
    Setting("EVIDENCE_GATE_RECONCILE_SCHEDULE", "NCRONTAB schedule of the reconcile timer.", default="0 */15 * * * *"),
    Setting("EVIDENCE_GATE_AZUREML_REGION", "Region of the Azure ML workspace(s): only when a workspace cannot be asked for its mlFlowTrackingUri, the azureml:// tracking URI is derived from it."),
    Setting("EVIDENCE_GATE_TOPIC", "Service Bus topic that receives the reports.", default="evidence-gate-findings"),
    Setting(f"{SERVICEBUS_CONNECTION}__fullyQualifiedNamespace", "Service Bus namespace host name (identity-based connection); unset means reports go to the local store."),
    Setting(f"{SERVICEBUS_CONNECTION}__credential", "`managedidentity` in Azure (Functions identity-based connection convention)."),
    Setting(f"{SERVICEBUS_CONNECTION}__clientId", "Client id of the user-assigned managed identity used for Service Bus."),
    Setting("AZURE_CLIENT_ID", "Client id of the user-assigned managed identity for DefaultAzureCredential."),
    Setting("TEAMS_WEBHOOK_URL", "Teams Workflows webhook URL that receives the Adaptive Cards.", secret=True),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", "Application Insights connection string; telemetry is exported only when set."),
    Setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "`Authorization=AAD;ClientId=<id>` for Entra-authenticated telemetry."),
    Setting("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "`true` in Azure: the Functions worker configures Azure Monitor."),
    Setting("EVIDENCE_GATE_LOG_ANALYTICS_WORKSPACE_ID", "Log Analytics workspace id; when set, `evidence-gate reports` reads from it."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str | None:
    """The value of a declared setting (empty strings count as unset)."""
    setting = _BY_NAME[name]  # KeyError here means the setting was never declared above
    value = os.environ.get(name, "").strip()
    return value or setting.default


def names() -> list[str]:
    return [s.name for s in SETTINGS]
