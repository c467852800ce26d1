"""The engine scenarios: real registry data of every shape the rules care about, built once per
session on the session's MLflow server (tests/conftest.py ``scenarios``), for the engine's own
tests and for the platform emulations in tests/platforms/."""

from __future__ import annotations

import os
import sqlite3
import time

AZURE_CONN = ("DefaultEndpointsProtocol=https;AccountName=churnlake;AccountKey="
              "q0Jv1mYQ3rW8e5tZ2xN7cB4aL6pK9sD1fG3hJ5kL7zX9vC2bN4mQ6wE8rT0yU1iO3pA5sD7fG9hJ1kL3zX5vC7==;"
              "EndpointSuffix=core.windows.net")
DAYS = 86_400_000


UNREADABLE_SOURCE = "abfss://models@lake.dfs.core.windows.net/churn/m"


def set_version_columns(server, model: str, version: str, **columns) -> None:
    """Change what the real server stores for a version (states the OSS API cannot produce)."""
    conn = sqlite3.connect(os.path.join(server.root, "mlflow.db"))
    with conn:
        for column, value in columns.items():
            conn.execute(f"UPDATE model_versions SET {column} = ? WHERE name = ? AND version = ?", (value, model, int(version)))
    conn.close()


def build(kit, mlflow_server) -> dict:
    """Every scenario, by name: a :class:`~tests.support.kit.Trained` each."""
    s = {}
    s["clean"] = kit.model_version("churn-clean")
    s["no_run"] = kit.model_version("churn-orphan", style="orphan")
    # Artifacts in an Azure storage account Evidence Gate has no credential for (EVD-008)
    s["unreadable"] = kit.model_version("churn-model", style="orphan", source=UNREADABLE_SOURCE)
    s["failed_run"] = kit.model_version("churn-failed", run_status="FAILED")
    s["deleted_run"] = kit.model_version("churn-deleted", delete_run=True)
    s["missing_run"] = kit.model_version("churn-missing-run")
    set_version_columns(mlflow_server, "churn-missing-run", s["missing_run"].version, run_id="0" * 32)
    s["cred_param"] = kit.model_version("churn-cred", params={"learning_rate": "0.1", "storage": AZURE_CONN})
    s["cred_file"] = kit.model_version("churn-cred-file", artifacts={".env": "API_KEY=not-for-your-eyes-42\n"})
    s["no_signature"] = kit.model_version("churn-nosig", signature=False)
    s["no_env"] = kit.model_version("churn-noenv", style="no_env")
    s["no_git"] = kit.model_version("churn-nogit", git_commit=None)
    s["no_dataset"] = kit.model_version("churn-nodata", dataset=False)
    s["no_owner"] = kit.model_version("churn-noowner", version_tags={})
    s["notebook"] = kit.model_version("churn-notebook", source_type="NOTEBOOK")
    s["metrics"] = kit.model_version("credit-risk", metrics={"accuracy": 0.9, "auc": 0.71})
    s["no_run_id"] = kit.model_version("churn-mlflow3-norunid", style="mlflow3_no_run_id")
    # The OSS server copies the logged model's run id onto the version; registries that do not
    # (and MLflow webhook payloads) leave it empty: lineage must come through the LoggedModel.
    set_version_columns(mlflow_server, "churn-mlflow3-norunid", s["no_run_id"].version, run_id=None)
    s["artifact_path"] = kit.model_version("churn-2x", style="artifact_path")
    s["runs_uri"] = kit.model_version("churn-runs-uri", style="runs_uri")
    s["failed_registration"] = kit.model_version("churn-failreg")
    set_version_columns(mlflow_server, "churn-failreg", s["failed_registration"].version, status="FAILED_REGISTRATION",
                        status_message="copy of artifacts failed")
    s["pending"] = kit.model_version("churn-pending")
    set_version_columns(mlflow_server, "churn-pending", s["pending"].version, status="PENDING_REGISTRATION")
    s["stale"] = kit.model_version("churn-stale", start_time=int(time.time() * 1000) - 200 * DAYS)
    # A champion (v1) and candidates for the promotion rules, all in one registered model.
    s["champion"] = kit.model_version("churn-promo", metrics={"accuracy": 0.91, "auc": 0.93})
    kit.client.set_registered_model_alias("churn-promo", "champion", s["champion"].version)
    s["approved"] = kit.model_version("churn-promo", version_tags={"owner": "team-churn", "approved_by": "rita"},
                                      metrics={"accuracy": 0.92, "auc": 0.94})
    s["unapproved"] = kit.model_version("churn-promo", metrics={"accuracy": 0.92, "auc": 0.94})
    s["self_approved"] = kit.model_version("churn-promo", version_tags={"owner": "team-churn", "approved_by": "Carol"},
                                           metrics={"accuracy": 0.92, "auc": 0.94})
    s["regressed"] = kit.model_version("churn-promo", version_tags={"owner": "team-churn", "approved_by": "rita"},
                                       metrics={"accuracy": 0.80, "auc": 0.93})
    s["first_promo"] = kit.model_version("churn-first", version_tags={"owner": "team-churn", "approved_by": "rita"})
    return s
