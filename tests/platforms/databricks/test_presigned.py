"""When the Files API refuses an MLflow tracking location (403) or is not there (404
ENDPOINT_NOT_FOUND), artifacts are read the way MLflow's Databricks artifact repository reads them:
MLflow's artifact listing APIs, and presigned URLs from `credentials-for-read` (runs) or
`credentials-for-download` (logged models). The local workspace signs its URLs and is strict about
their signature and expiry."""

from __future__ import annotations

import pytest
import requests

from shared.engine import Engine
from shared.errors import EvidenceUnreadable
from shared.evidence.registry import RegistryClient
from shared.policy import load_policy
from shared.report import Trigger


def _outcome(registry: str, name: str, version: str, store) -> tuple[str, set[str], list[dict]]:
    report = Engine(load_policy(), store).check_version(registry, name, version, trigger=Trigger("cli", "check"))
    return report["verdict"], {f["rule_id"] for f in report["findings"] if not f["waived"]}, report["findings"]


@pytest.mark.parametrize(("registry", "fault"), [("databricks-uc", {"status": 403}),
                                                 ("databricks", {"status": 404, "error_code": "ENDPOINT_NOT_FOUND"})])
def test_without_the_files_api_a_check_reads_the_same_evidence(workspace, scenarios, store, registry, fault):
    trained = scenarios["clean"]
    name = workspace.uc_name(trained.model) if registry == "databricks-uc" else trained.model
    expected = _outcome(registry, name, trained.version, store)[:2]
    workspace.reset()
    workspace.fail("/api/2.0/fs/", **fault)
    assert _outcome(registry, name, trained.version, store)[:2] == expected
    assert workspace.count("/artifacts/credentials-for-download") == 1  # the logged model's MLmodel
    assert workspace.count("/presigned/") == 1
    assert workspace.count("/api/2.0/mlflow/artifacts/list") + workspace.count("/artifacts/directories") >= 2


def test_a_presigned_url_the_storage_refuses_is_asked_for_once_more_then_unreadable(workspace, scenarios, store):
    trained = scenarios["clean"]
    name = workspace.uc_name(trained.model)
    _, readable_ids, _ = _outcome("databricks-uc", name, trained.version, store)
    workspace.reset()
    workspace.fail("/api/2.0/fs/", status=403)
    workspace.presign_seconds = -1  # every URL it hands out has already expired
    verdict, ids, findings = _outcome("databricks-uc", name, trained.version, store)
    assert verdict == "fail" and ids == readable_ids | {"EVD-008"}  # no false finding about the model files
    (unreadable,) = [f for f in findings if f["rule_id"] == "EVD-008"]
    assert "refused the presigned URL" in unreadable["message"] and "sig=" not in unreadable["message"]
    assert workspace.count("/artifacts/credentials-for-download") == 2 and workspace.count("/presigned/") == 2


def test_the_local_storage_is_strict_about_signature_and_expiry(workspace, scenarios):
    trained = scenarios["clean"]
    credentials = requests.post(f"{workspace.host}/api/2.0/mlflow/logged-models/{trained.model_id}/artifacts/credentials-for-download",
                                json={"paths": ["MLmodel"]}, headers={"Authorization": f"Bearer {workspace.token}"}, timeout=30)
    signed = credentials.json()["credentials"][0]["credential_info"]["signed_uri"]
    assert requests.get(signed, timeout=30).status_code == 200  # no workspace credentials needed
    tampered = signed.replace("sig=", "sig=0")
    later = signed.replace("se=", "se=9")
    assert requests.get(tampered, timeout=30).status_code == 403
    assert requests.get(later, timeout=30).status_code == 403  # the expiry is signed too


def test_refused_by_both_apis_the_artifacts_are_unreadable(workspace, scenarios):
    client = RegistryClient("databricks")
    trained = scenarios["clean"]
    location = client.get_logged_model(trained.model_id).artifact_location
    workspace.fail("/api/2.0/fs/", status=403)
    workspace.fail("/credentials-for-download", status=403)
    with pytest.raises(EvidenceUnreadable, match="HTTP 403 PERMISSION_DENIED from MLflow's artifact API"):
        client.read_artifact_text(location, "MLmodel")
