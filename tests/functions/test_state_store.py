"""The function app on the shared Table state store (Azurite): with the store down a delivery is
503 and nothing is decided (no report, never a GOV-006 from missing memory); once the store is back
the redelivery gets the correct report. In an Azure Functions host without a shared store, checks
are refused with what to set."""

from __future__ import annotations

import json
import logging
import os
import secrets

import pytest

from shared.cli import main
from shared.errors import EXIT_UNAVAILABLE
from shared.services import Once, Services
from tests.functions.conftest import app_functions, mlflow_headers, payload, post, unique


def answer(resp):
    return resp.status_code, json.loads(resp.get_body())


@pytest.fixture()
def shared_state(gate, azurite, monkeypatch):
    monkeypatch.setenv("EVIDENCE_GATE_STATE", azurite.connection_string)
    monkeypatch.setenv("EVIDENCE_GATE_STATE_TABLE", f"fn{secrets.token_hex(6)}")
    gate.use(engine=Services.from_settings().engine)  # the store the settings configure
    assert type(gate.store).__name__ == "TableStateStore"
    return gate


@pytest.fixture(scope="module")
def trained(fn_kit):
    """Versions built before the gate's settings (the kit resets MLflow's global tracking URI)."""
    name = unique("state")
    out = {key: fn_kit.model_version(name) for key in ("v1", "v2", "cli", "no_state")}
    fn_kit.client.set_registered_model_alias(name, "champion", out["v1"].version)
    return out


def delivery(event: str, **data) -> tuple[bytes, dict]:
    body = payload(event)
    body["data"].update(data)
    raw = json.dumps(body).encode()
    return raw, mlflow_headers(raw)


def test_store_down_is_503_and_no_report_then_the_redelivery_is_checked(shared_state, trained, table_outage):
    gate = shared_state
    v1, v2 = trained["v1"], trained["v2"]
    name = v1.model
    registered = delivery("mlflow-model-version-created.json", name=v1.model, version=v1.version, run_id=None)
    status, out = answer(gate.post("mlflow_webhook", *registered))
    assert status == 200 and out["stored"] == 1 and out["reports"][0]["verdict"] == "pass"

    promoted = delivery("mlflow-model-version-alias-created.json", name=v1.model, version=v1.version, alias="champion")
    registered2 = delivery("mlflow-model-version-created.json", name=v2.model, version=v2.version, run_id=None)

    table_outage.stop()
    for body, headers in (promoted, registered2):
        status, out = answer(gate.post("mlflow_webhook", body, headers))
        assert status == 503 and out["error"] == "state_unavailable", out
        assert "AccountKey" not in json.dumps(out)
    table_outage.start()

    assert gate.store.count() == 1  # only the registration checked before the outage
    status, out = answer(gate.post("mlflow_webhook", *promoted))  # the sender's redelivery
    assert status == 200 and out["stored"] == 1
    (report,) = gate.reports(model=name, version=v1.version, verdict=out["reports"][0]["verdict"])
    assert report["check"] == "promotion"
    assert "GOV-006" not in {f["rule_id"] for f in report["findings"]}  # the registration on record was seen
    status, out = answer(gate.post("mlflow_webhook", *registered2))
    assert status == 200 and out["stored"] == 1 and out["reports"][0]["verdict"] == "pass"
    assert gate.store.count() == 3


def test_cli_check_exits_3_when_the_store_is_down(shared_state, trained, table_outage, capsys):
    version = trained["cli"]
    table_outage.stop()
    code = main(["check", "--tracking-uri", shared_state.registry, "--model", version.model, "--version", version.version])
    assert code == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "state store is unavailable" in err and "Traceback" not in err and "AccountKey" not in err


def test_functions_host_without_a_shared_store_refuses_checks(gate, trained, monkeypatch, caplog, tmp_path):
    from shared.state import log_configuration

    for name in ("EVIDENCE_GATE_STATE", "EVIDENCE_GATE_STATE__tableServiceUri"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123456789abcdef")
    local_file = tmp_path / "in-azure" / "reports.sqlite"
    monkeypatch.setenv("EVIDENCE_GATE_STORE", str(local_file))
    functions = app_functions(Once(Services.from_settings))  # as function_app.py wires the app
    with caplog.at_level(logging.ERROR, logger="evidence_gate.state"):
        log_configuration()
    assert "no shared state store configured" in caplog.text
    version = trained["no_state"]
    body, headers = delivery("mlflow-model-version-created.json", name=version.model, version=version.version,
                             run_id=None)
    for _ in range(2):  # refused on every delivery, not only the first
        status, out = answer(post(functions, "mlflow_webhook", body, headers))
        assert status == 503 and out["error"] == "not_configured"
        assert "EVIDENCE_GATE_STATE__tableServiceUri" in out["message"]
    assert not os.path.exists(local_file.parent)  # no private local file was created
