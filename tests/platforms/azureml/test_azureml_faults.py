"""Trouble on Azure ML gives the answer a user should get: 429/503 are retried within bounds and
then 'retry later' (503 / exit 3); a refused token or role is one line saying what to configure;
unreadable files are EvidenceUnreadable (EVD-008), never a false finding; slow answers end at the
check's deadline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared import azure_credential
from shared.errors import ConfigurationError, DeadlineExceeded, EvidenceUnreadable, RateLimited, RegistryUnavailable
from shared.evidence import azureml
from shared.evidence.deadline import Deadline
from shared.evidence.registry import RegistryClient
from tests.platforms.azureml.local_azureml import Fault

BIN = os.path.join(os.path.dirname(sys.executable), "evidence-gate")


@pytest.fixture(scope="module")
def trained(kit):
    return kit.model_version("aml-faults")


@pytest.fixture()
def client(workspace):
    return RegistryClient(workspace.tracking_uri)


def cli(*args, store) -> subprocess.CompletedProcess:
    env = dict(os.environ, EVIDENCE_GATE_STORE=str(store))
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=300)


def test_429_with_retry_after_is_retried_then_rate_limited(aml_env, client, trained):
    aml_env.always("/models/", Fault(status=429, retry_after=1))
    with pytest.raises(RateLimited) as caught:
        client.get_model_version(trained.model, trained.version)
    assert caught.value.transient and caught.value.exit_code == 3 and caught.value.http_status == 503
    assert aml_env.count("/models/") == 1 + int(os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])


def test_a_503_that_clears_is_retried_and_the_check_reads_on(aml_env, client, trained):
    aml_env.inject("/jobs/", Fault(status=503, retry_after=1))
    run = client.get_run(trained.run_id)
    assert run.found and run.launched_by_job is True
    assert aml_env.count("/jobs/") == 2


def test_an_mlflow_endpoint_outage_is_registry_unavailable(aml_env, client, trained):
    aml_env.always("/api/2.0/mlflow/runs/get", Fault(status=503, retry_after=0))
    with pytest.raises(RegistryUnavailable) as caught:
        client.get_run(trained.run_id)
    assert caught.value.status == 503 or "HTTP 503" in caught.value.reason


def test_a_refused_arm_request_says_which_role_to_give(aml_env, client, trained):
    aml_env.always("/models/", Fault(status=403))
    with pytest.raises(ConfigurationError) as caught:
        client.get_model_version(trained.model, trained.version)
    assert "AzureML Data Scientist" in str(caught.value) and caught.value.retry


def test_refused_artifact_listing_and_blob_reads_are_unreadable_evidence(aml_env, client, trained, workspace):
    location = client.get_model_version(trained.model, trained.version).source
    assert "MLmodel" in client.list_artifacts(location)
    # each check below has its own client (one client serves one check: it keeps the listings it made)
    aml_env.always("/prefix/contentinfo", Fault(status=403))
    with pytest.raises(EvidenceUnreadable) as caught:
        RegistryClient(workspace.tracking_uri).list_artifacts(location)
    assert "HTTP 403" in caught.value.reason and caught.value.location == location
    aml_env.reset()
    aml_env.always("/amlartifacts/", Fault(status=403, body=b"<Error><Code>AuthorizationFailure</Code></Error>"))
    with pytest.raises(EvidenceUnreadable) as caught:
        RegistryClient(workspace.tracking_uri).read_artifact_text(location, "MLmodel")
    assert "storage" in caught.value.reason


def test_logged_models_answered_404_without_a_body_is_unreadable_not_an_outage(aml_env, client, trained):
    with pytest.raises(EvidenceUnreadable) as caught:
        client.get_logged_model(trained.model_id)
    assert "logged-models" in caught.value.reason


def test_a_location_outside_the_run_artifacts_is_unreadable(aml_env, client):
    with pytest.raises(EvidenceUnreadable):
        client.list_artifacts("azureml://subscriptions/s/resourceGroups/rg/workspaces/ws-churn/datastores/"
                              "workspaceblobstore/paths/LocalUpload/abc/model")


def test_slow_answers_end_at_the_deadline(aml_env, workspace, trained):
    backend = azureml.AzureMLBackend(workspace.tracking_uri, workspace.tracking_uri)
    backend.get_model_version(trained.model, trained.version, deadline=Deadline(30))  # connected
    aml_env.always("/models/", Fault(delay=3))
    with pytest.raises(DeadlineExceeded):
        backend.get_model_version(trained.model, trained.version, deadline=Deadline(0.5))


def test_no_credential_is_one_line_saying_what_to_set(aml_env, workspace, trained, monkeypatch):
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("AZURE_CLIENT_ID", "33333333-4444-5555-6666-777777777777")  # a connection not made yet
    with pytest.raises(ConfigurationError) as caught:
        RegistryClient(workspace.tracking_uri).get_model_version(trained.model, trained.version)
    assert str(caught.value) == azure_credential.NO_CREDENTIAL


def test_the_cli_exits_3_with_one_line_when_azure_ml_is_unavailable(aml_env, workspace, trained, tmp_path):
    aml_env.always("/models/", Fault(status=503, retry_after=0))
    done = cli("check", "--tracking-uri", workspace.tracking_uri, "--model", trained.model, "--version",
               trained.version, store=tmp_path / "reports.sqlite")
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert aml_env.identity_secret not in done.stderr + done.stdout


def test_the_cli_checks_a_workspace_model_end_to_end(aml_env, workspace, trained, tmp_path):
    done = cli("check", "--tracking-uri", workspace.tracking_uri, "--model", trained.model, "--version",
               trained.version, "--format", "json", store=tmp_path / "reports.sqlite")
    assert done.returncode == 0, done.stderr
    assert '"verdict": "pass"' in done.stdout
