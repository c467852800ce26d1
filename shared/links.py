"""Links to a model version and a run in the registry's own UI (MLflow UI, Databricks, Azure ML studio)."""

from __future__ import annotations

import re
from urllib.parse import quote

from shared import settings

_AZUREML = re.compile(r"^azureml://[^/]+/mlflow/v[\d.]+(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
                      r"Microsoft\.MachineLearningServices/workspaces/[^/?]+)", re.I)


def ui_links(registry: str, model: str | None, version: str | None, run_id: str | None,
             experiment_id: str | None) -> dict:
    version_url = run_url = None
    if registry.startswith(("http://", "https://")):
        base = registry.rstrip("/")
        if model and version:
            version_url = f"{base}/#/models/{quote(model, safe='')}/versions/{version}"
        if run_id and experiment_id:
            run_url = f"{base}/#/experiments/{experiment_id}/runs/{run_id}"
    elif registry.startswith("databricks"):
        host = (settings.get("DATABRICKS_HOST") or "").rstrip("/")
        if host:
            if model and version:
                if registry.startswith("databricks-uc") and model.count(".") == 2:
                    version_url = f"{host}/explore/data/models/{model.replace('.', '/')}/version/{version}"
                else:
                    version_url = f"{host}/ml/models/{quote(model, safe='')}/versions/{version}"
            if run_id and experiment_id:
                run_url = f"{host}/ml/experiments/{experiment_id}/runs/{run_id}"
    else:
        match = _AZUREML.match(registry)
        if match:
            wsid = match.group(1)
            if model and version:
                version_url = f"https://ml.azure.com/model/{quote(model, safe='')}:{version}/details?wsid={wsid}"
            if run_id:
                run_url = f"https://ml.azure.com/runs/{run_id}?wsid={wsid}"
    return {"version": version_url, "run": run_url}
