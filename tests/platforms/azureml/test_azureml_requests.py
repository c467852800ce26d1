"""What a check costs on Azure ML, counted where it lands (the local Azure ML's request log): the
first check in a fresh process, as a function's first event, fetches the cloud metadata
(``ARM_CLOUD_METADATA_URL``) once for its client, not once per azure-ai-ml look-up (five while
building one ``MLClient``); then one token and the check's own reads.

``import azure.ai.ml`` itself fetches the metadata of a cloud that is not built into it (this
local one, an air-gapped cloud) for a few class defaults; Azure's public and sovereign clouds are
built in, so there nothing is fetched at all. The test counts what the check adds to the import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.platforms.azureml.local_azureml import LocalAzureML


def fresh_check(registry: str, model: str, version: str, store: str) -> dict:
    code = (
        "import json, sys\n"
        "from shared.engine import Engine\nfrom shared.policy import load_policy\nfrom shared.report import Trigger\n"
        "from shared.sinks.store import ReportStore\n"
        f"report = Engine(load_policy(), ReportStore({store!r})).check_version(\n"
        f"    {registry!r}, {model!r}, {version!r}, trigger=Trigger('cli', 'check'))\n"
        "print(json.dumps({'verdict': report['verdict'], 'findings': report['findings']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), capture_output=True, text=True, check=True,
                         env=dict(os.environ))
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_process_fetches_the_cloud_metadata_once(kit, aml_env: LocalAzureML, workspace, tmp_path):
    trained = kit.model_version("aml-fresh-process")
    aml_env.reset()
    subprocess.run([sys.executable, "-c", "import azure.ai.ml"], check=True, env=dict(os.environ))
    on_import = aml_env.kinds()["cloud metadata"]
    aml_env.reset()
    report = fresh_check(workspace.tracking_uri, trained.model, trained.version, str(tmp_path / "r.sqlite"))
    assert report["verdict"] == "pass", report["findings"]
    counts = aml_env.kinds()
    assert counts["cloud metadata"] == on_import + 1, aml_env.requests
    assert counts["token"] == 1
    assert (counts["arm model version"], counts["arm job"], counts["mlflow runs/get"]) == (1, 1, 1), aml_env.requests
    # the files of the check: one listing of the model's folder answers for the MLmodel under it
    assert counts["artifact listing"] <= 2, aml_env.requests
