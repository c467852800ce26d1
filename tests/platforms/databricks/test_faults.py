"""What a user gets from a Databricks registry in trouble: unreachable, throttled, slow, refusing
artifacts, missing an endpoint, a run in another workspace, wrong or missing credentials. Each
answer comes within the deadline and is never a finding about the model."""

from __future__ import annotations

import time

import pytest
import requests

from demo.stack import free_port
from shared.cli import main as cli
from shared.errors import (
    BadInput,
    ConfigurationError,
    DeadlineExceeded,
    EvidenceUnreadable,
    RateLimited,
    RegistryUnavailable,
)
from shared.evidence.databricks import DatabricksBackend
from shared.evidence.deadline import Deadline
from shared.evidence.registry import RegistryClient
from tests.platforms.databricks.conftest import point_at
from tests.platforms.databricks.workspace import OTHER_WORKSPACE_ID, WORKSPACE_ID


def _timed(fn):
    started = time.monotonic()
    try:
        fn()
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError("no error")


def test_an_unreachable_workspace_is_unavailable_within_the_deadline(monkeypatch, tmp_path):
    point_at(monkeypatch, tmp_path, f"http://127.0.0.1:{free_port()}", DATABRICKS_TOKEN="dapi-x")
    backend = DatabricksBackend("databricks-uc", "databricks-uc")
    exc, took = _timed(lambda: backend.get_model_version("main.ml.churn-clean", "1", deadline=Deadline(5)))
    assert isinstance(exc, RegistryUnavailable) and "connection refused" in exc.reason
    assert exc.exit_code == 3 and exc.http_status == 503
    assert took < 5 + 3.5  # the deadline, plus the SDK's one-off host-metadata probe (2 s budget)


def test_a_429_storm_is_rate_limited_within_the_deadline(workspace, scenarios):
    workspace.fail("/unity-catalog/model-versions/get", status=429, retry_after=1)
    backend = DatabricksBackend("databricks-uc", "databricks-uc")
    exc, took = _timed(lambda: backend.get_model_version(workspace.uc_name("churn-clean"), "1", deadline=Deadline(4)))
    assert isinstance(exc, RateLimited) and exc.status == 429 and exc.retry_after == 1
    assert took < 4.5
    assert 2 <= workspace.count("/unity-catalog/model-versions/get") <= 4  # Retry-After honoured, then given up


def test_a_retry_after_beyond_the_deadline_ends_at_once_and_the_cli_says_retry_later(workspace, scenarios, capsys):
    workspace.fail("/unity-catalog/model-versions/get", status=429, retry_after=600)
    started = time.monotonic()
    code = cli(["check", "--tracking-uri", "databricks-uc", "--model", workspace.uc_name("churn-clean"),
                "--version", scenarios["clean"].version, "--no-store"])
    assert code == 3 and time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "rate limited (HTTP 429)" in err and "Traceback" not in err
    assert workspace.count("/unity-catalog/model-versions/get") == 1


def test_a_slow_answer_ends_at_the_deadline(workspace, scenarios):
    workspace.fail("/api/2.0/mlflow/runs/get", delay=3)
    backend = DatabricksBackend("databricks", "databricks")
    exc, took = _timed(lambda: backend.get_run(scenarios["clean"].run_id, deadline=Deadline(1.5)))
    assert isinstance(exc, RegistryUnavailable) and took < 2.5
    assert isinstance(exc, DeadlineExceeded) or "timed out" in exc.reason


def test_a_5xx_is_unavailable_with_its_status(workspace, scenarios):
    workspace.fail("/api/2.0/mlflow/model-versions/get", status=503, retry_after=600)
    with pytest.raises(RegistryUnavailable) as caught:
        RegistryClient("databricks").get_model_version("churn-clean", scenarios["clean"].version)
    assert not isinstance(caught.value, RateLimited) and caught.value.status == 503 and caught.value.exit_code == 3


def test_403_on_artifacts_is_unreadable_evidence_not_an_outage_nor_a_missing_model(workspace, scenarios):
    """Refused by the Files API and by MLflow's artifact API, its fallback."""
    client = RegistryClient("databricks-uc")
    trained = scenarios["clean"]
    location = client.get_logged_model(trained.model_id).artifact_location
    workspace.fail("/api/2.0/fs/directories", status=403)
    workspace.fail("/artifacts/directories", status=403)
    with pytest.raises(EvidenceUnreadable) as caught:
        client.list_artifacts(location)
    assert "HTTP 403 PERMISSION_DENIED from MLflow's artifact API" in caught.value.reason
    assert "CAN READ" in caught.value.fix and caught.value.location == location
    assert workspace.count("/api/2.0/fs/directories") == 1  # not retried
    assert workspace.count(f"/api/2.0/mlflow/logged-models/{trained.model_id}/artifacts/directories") == 1


def test_a_missing_directory_is_confirmed_absent_and_a_missing_endpoint_is_unreadable(workspace, scenarios):
    client = RegistryClient("databricks")
    run = client.get_run(scenarios["clean"].run_id)
    assert client.list_artifacts(run.artifact_uri) == []  # Files API 404 NOT_FOUND: nothing logged at the run root
    workspace.fail("/api/2.0/fs/directories", status=404, error_code="ENDPOINT_NOT_FOUND")
    assert client.list_artifacts(run.artifact_uri) == []  # the same, from MLflow's artifact API
    assert workspace.count("/api/2.0/mlflow/artifacts/list") == 1
    workspace.fail("/api/2.0/mlflow/artifacts/list", status=404, error_code="ENDPOINT_NOT_FOUND")
    with pytest.raises(EvidenceUnreadable, match="does not serve MLflow's artifact API"):
        client.list_artifacts(run.artifact_uri)


def test_an_artifact_location_the_files_api_does_not_serve_is_unreadable(workspace, monkeypatch, tmp_path):
    with pytest.raises(EvidenceUnreadable, match="neither an MLflow tracking location"):
        RegistryClient("databricks").list_artifacts("s3://bucket/churn")
    # an external location in Azure storage is read with the identity (here: none configured)
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "IDENTITY_ENDPOINT", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(EvidenceUnreadable, match="storage account 'lake' needs a credential"):
        RegistryClient("databricks").list_artifacts("abfss://models@lake.dfs.core.windows.net/churn")
    assert workspace.count("/api/") == 0


def test_a_run_in_another_workspace_is_reported_as_such_not_as_missing(workspace, scenarios):
    trained = scenarios["clean"]
    workspace.foreign_runs.add(trained.run_id)
    client = RegistryClient("databricks-uc")
    mv = client.get_model_version(workspace.uc_name(trained.model), trained.version)
    with pytest.raises(EvidenceUnreadable) as caught:
        client.get_run(mv.run_id)
    assert OTHER_WORKSPACE_ID in caught.value.reason and OTHER_WORKSPACE_ID in caught.value.fix
    # the same run of a version of this workspace is missing: evidence (LIN-003)
    workspace.foreign_runs.clear()
    assert WORKSPACE_ID != OTHER_WORKSPACE_ID and client.get_run("0" * 32).found is False


def test_a_two_level_name_is_bad_input_for_unity_catalog(workspace):
    with pytest.raises(BadInput, match="catalog.schema.model"):
        RegistryClient("databricks-uc").get_model_version("churn-clean", "1")
    assert workspace.count("/api/") == 0


def test_unity_catalog_refuses_what_open_source_mlflow_accepts(workspace):
    """The local workspace is as strict as Unity Catalog: order_by and unfiltered version search refused."""
    headers = {"Authorization": f"Bearer {workspace.token}"}
    url = f"{workspace.host}/api/2.0/mlflow/unity-catalog/model-versions/search"
    name = workspace.uc_name("churn-clean")
    ordered = requests.get(url, params={"filter": f"name='{name}'", "order_by": "last_updated_timestamp DESC"},
                           headers=headers, timeout=10)
    unfiltered = requests.get(url, headers=headers, timeout=10)
    assert (ordered.status_code, ordered.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert (unfiltered.status_code, unfiltered.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert requests.get(url, params={"filter": f"name='{name}'"}, timeout=10).status_code == 401  # no token


def test_every_unity_catalog_version_is_listed_without_order_by(workspace, scenarios):
    page, token = RegistryClient("databricks-uc").search_model_versions()
    names = {(mv.name, mv.version) for mv, _ in page}
    assert token is None and (workspace.uc_name("churn-promo"), scenarios["regressed"].version) in names
    stamps = [ts for _, ts in page]
    assert stamps == sorted(stamps, reverse=True)
    assert workspace.count("order_by") == 0


def test_oauth_m2m_gets_one_token_and_reuses_it(local_databricks, monkeypatch, tmp_path, scenarios):
    local_databricks.reset()
    point_at(monkeypatch, tmp_path, local_databricks.host, DATABRICKS_CLIENT_ID=local_databricks.client_id,
             DATABRICKS_CLIENT_SECRET=local_databricks.client_secret)
    trained = scenarios["clean"]
    for _ in range(2):
        RegistryClient("databricks").get_model_version(trained.model, trained.version)
    assert local_databricks.count("/oidc/v1/token") == 1
    assert local_databricks.count("/oidc/.well-known/oauth-authorization-server") == 1


def test_a_wrong_client_secret_says_what_to_fix_without_echoing_it(local_databricks, monkeypatch, tmp_path, capsys):
    local_databricks.reset()
    point_at(monkeypatch, tmp_path, local_databricks.host, DATABRICKS_CLIENT_ID=local_databricks.client_id,
             DATABRICKS_CLIENT_SECRET="wrong-secret-do-not-echo")
    code = cli(["check", "--tracking-uri", "databricks", "--model", "churn-clean", "--version", "1", "--no-store"])
    err = capsys.readouterr().err
    assert code == 3 and "DATABRICKS_CLIENT_SECRET" in err and "wrong-secret-do-not-echo" not in err
    assert "Traceback" not in err


def test_no_credentials_say_what_to_set(monkeypatch, tmp_path):
    point_at(monkeypatch, tmp_path, "https://adb-1.azuredatabricks.net")
    with pytest.raises(ConfigurationError, match="set DATABRICKS_HOST with DATABRICKS_TOKEN") as caught:
        RegistryClient("databricks").get_model_version("churn-clean", "1")
    assert caught.value.exit_code == 3 and caught.value.http_status == 503


def test_a_profile_names_the_workspace_and_its_credentials(local_databricks, monkeypatch, tmp_path, scenarios):
    local_databricks.reset()
    point_at(monkeypatch, tmp_path, local_databricks.host)
    monkeypatch.delenv("DATABRICKS_HOST")  # only the profile names the workspace and its token
    config = tmp_path / "databrickscfg"
    config.write_text(f"[prod]\nhost = {local_databricks.host}\ntoken = {local_databricks.token}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    trained = scenarios["clean"]
    client = RegistryClient("databricks-uc://prod")
    assert client.backend == "databricks"
    mv = client.get_model_version(local_databricks.uc_name(trained.model), trained.version)
    assert mv.run_id == trained.run_id
    with pytest.raises(BadInput, match="databricks-uc://<profile>"):
        RegistryClient("databricks-uc://prod/extra", backend="databricks")


def test_a_cross_workspace_run_is_evd_008_in_the_report_never_lin_001_or_lin_003(workspace, scenarios, store):
    """Through the engine: the version is checked, the run it names is reported unreadable (the
    other workspace named), and nothing claims the run is missing."""
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.report import Trigger

    trained = scenarios["clean"]
    workspace.foreign_runs.add(trained.run_id)
    try:
        report = Engine(load_policy(), store).check_version(
            "databricks-uc", workspace.uc_name(trained.model), trained.version, trigger=Trigger("cli", "check"))
    finally:
        workspace.foreign_runs.clear()
    ids = {f["rule_id"] for f in report["findings"] if not f["waived"]}
    assert "EVD-008" in ids and not ids & {"LIN-001", "LIN-003"}, report["findings"]
    (finding,) = [f for f in report["findings"] if f["rule_id"] == "EVD-008"]
    assert OTHER_WORKSPACE_ID in finding["message"] and finding["evidence"]["part"] == "run"
