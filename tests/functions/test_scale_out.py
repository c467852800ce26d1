"""Scale-out: two `evidence-gate serve` processes (two instances) sharing one Table state store on
Azurite, with a real MLflow server of their own. A promotion checked on B sees the registration
checked on A; 20 copies of one delivery spread over both give one stored report; two concurrent
reconcile sweeps (two engines, two store clients) never move the watermark backwards and give each
version one registration report."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
from azure.data.tables import TableClient

from demo.stack import MlflowServer, free_port
from shared.engine import Engine
from shared.policy import load_policy
from shared.reconcile import reconcile_registry
from shared.services import Services
from shared.state.table import TableStateStore
from tests.functions.conftest import MLFLOW_SECRET, FunctionsKit, mlflow_headers, payload, unique
from tests.functions.test_serve import REPO, http


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A registry of its own: the sweeps list every model in it."""
    server = MlflowServer(str(tmp_path_factory.mktemp("mlflow-scale-out"))).start()
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    kit = FunctionsKit(server.uri)
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])
    yield server, kit
    server.stop()


@pytest.fixture()
def table_name():
    return f"scale{secrets.token_hex(6)}"


def state_store(azurite, table_name: str) -> TableStateStore:
    return TableStateStore(TableClient.from_connection_string(azurite.connection_string, table_name))


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"evidence-gate serve did not listen on {port}")


@pytest.fixture()
def instances(own_server, azurite, table_name, tmp_path):
    server, _ = own_server
    procs, urls = [], []
    for label in ("a", "b"):
        port = free_port()
        env = dict(os.environ, MLFLOW_TRACKING_URI=server.uri, MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
                   EVIDENCE_GATE_STATE=azurite.connection_string, EVIDENCE_GATE_STATE_TABLE=table_name,
                   EVIDENCE_GATE_STORE=str(tmp_path / f"unused-{label}.sqlite"))
        for name in ("EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace", "TEAMS_WEBHOOK_URL",
                     "APPLICATIONINSIGHTS_CONNECTION_STRING", "EVIDENCE_GATE_POLICY", "EVIDENCE_GATE_WAIVERS"):
            env.pop(name, None)
        workdir = tmp_path / label
        workdir.mkdir()
        procs.append(subprocess.Popen([str(REPO / ".venv/bin/evidence-gate"), "serve", "--no-timer", "--port", str(port)],
                                      cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        urls.append(f"http://127.0.0.1:{port}/api/webhooks/mlflow")
    for proc, url in zip(procs, urls, strict=True):
        wait_listening(int(url.split(":")[2].split("/")[0]), proc)
    yield urls
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for label in ("a", "b"):
        assert not (tmp_path / f"unused-{label}.sqlite").exists()  # the shared store, not a local file


def deliver(url: str, event: str, **data) -> tuple[int, dict]:
    body = payload(event)
    body["data"].update(data)
    raw = json.dumps(body).encode()
    status, out = http("POST", url, raw, mlflow_headers(raw))
    return status, json.loads(out)


def test_promotion_on_b_sees_the_registration_checked_on_a(instances, own_server, azurite, table_name):
    a, b = instances
    _, kit = own_server
    trained = kit.model_version(unique("scale"))
    status, out = deliver(a, "mlflow-model-version-created.json", name=trained.model, version=trained.version, run_id=None)
    assert status == 200 and out["reports"][0]["verdict"] == "pass", out
    kit.client.set_registered_model_alias(trained.model, "champion", trained.version)
    status, out = deliver(b, "mlflow-model-version-alias-created.json", name=trained.model, version=trained.version,
                          alias="champion")
    assert status == 200 and out["stored"] == 1, out
    assert "GOV-006" not in out["reports"][0]["findings"]
    store = state_store(azurite, table_name)
    assert {r["check"] for r in store.query(model=trained.model)} == {"registration", "promotion"}


def test_twenty_duplicate_deliveries_over_both_instances_give_one_report(instances, own_server, azurite, table_name):
    _, kit = own_server
    trained = kit.model_version(unique("dup"))
    body = payload("mlflow-model-version-created.json")
    body["data"].update(name=trained.model, version=trained.version, run_id=None)
    raw = json.dumps(body).encode()
    headers = mlflow_headers(raw)  # one delivery, sent 20 times

    def send(i: int):
        return http("POST", instances[i % 2], raw, headers)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))
    assert [status for status, _ in answers] == [200] * 20, answers
    ids = {json.loads(out)["reports"][0]["report_id"] for _, out in answers}
    assert len(ids) == 1
    assert sum(json.loads(out)["stored"] for _, out in answers) == 1
    store = state_store(azurite, table_name)
    assert [r["report_id"] for r in store.query(model=trained.model)] == list(ids)


def test_two_concurrent_sweeps_never_move_the_watermark_backwards(own_server, azurite, table_name):
    server, kit = own_server
    for i in range(3):
        name = unique(f"sweep{i}")
        for _ in range(2):
            kit.model_version(name)
    stores = [state_store(azurite, table_name) for _ in range(2)]
    policy = load_policy(None, None)
    sweepers = [Services(engine=Engine(policy, store)) for store in stores]
    seen: list[int] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            value = stores[0].watermark(server.uri)
            if value is not None:
                seen.append(value)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            summaries = list(pool.map(lambda s: reconcile_registry(server.uri, s, rate=0, workers=4), sweepers))
    finally:
        stop.set()
        sampler.join()
    seen.append(stores[0].watermark(server.uri))  # the value after both (the sampler may have seen none)
    assert all(s.complete for s in summaries), [s.line() for s in summaries]
    newest = max(mv.last_updated_timestamp for mv in kit.client.search_model_versions(max_results=1000))
    assert stores[1].watermark(server.uri) == newest
    assert seen and seen == sorted(seen), seen  # never backwards
    reports = stores[0].query(limit=10_000)
    registrations = [(r["subject"]["model"], r["subject"]["version"]) for r in reports
                     if r["check"] == "registration" and r["trigger"]["source"] == "reconcile"]
    assert len(registrations) == len(set(registrations))  # each version one registration report
    versions = {(mv.name, str(mv.version)) for mv in kit.client.search_model_versions(max_results=1000)}
    assert set(registrations) == versions


def test_a_state_outage_during_a_sweep_is_retried_without_holding_the_watermark(own_server, azurite, table_name):
    """The state store fails for one version's check (every request about its reconcile event, through
    the fault proxy in front of Azurite): that version is unavailable and has no report; the sweep
    moves its watermark on and remembers the version, which the next sweep checks."""
    from azure.core.credentials import AzureNamedKeyCredential

    from shared.reconcile import pending_key
    from shared.state.table import CLIENT_OPTIONS, key
    from tests.state.test_store_faults import SERVER_BUSY
    from tests.support.azurite import ACCOUNT, ACCOUNT_KEY
    from tests.support.proxy import CountingProxy

    server, kit = own_server
    name = unique("blip")
    versions = [kit.model_version(name) for _ in range(3)]
    proxy = CountingProxy(f"http://127.0.0.1:{azurite.ports['table']}").start()
    try:
        store = TableStateStore(TableClient(f"{proxy.uri}/{ACCOUNT}", table_name,
                                            credential=AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY), **CLIENT_OPTIONS))
        services = Services(engine=Engine(load_policy(None, None), store))
        failing = versions[1]
        proxy.matching[key("e", "reconcile", "registration", f"reconcile:{name}:{failing.version}")] = SERVER_BUSY
        first = reconcile_registry(server.uri, services, rate=0, workers=1)
        assert [u for u in first.unavailable if u.startswith(f"{name} v{failing.version}:")], first.unavailable
        assert "state store is unavailable" in " ".join(first.unavailable)
        updated = {mv.version: mv.last_updated_timestamp for mv in kit.client.search_model_versions(f"name='{name}'")}
        assert store.watermark(server.uri) >= updated[failing.version]  # no sweep stalls on one version
        assert store.get_pending(server.uri, pending_key(name, failing.version))["kind"] == "unavailable"
        reported = {r["subject"]["version"] for r in store.query(model=name)}
        assert failing.version not in reported and {versions[0].version, versions[2].version} <= reported
        proxy.matching.clear()
        second = reconcile_registry(server.uri, services, rate=0, workers=1)
        assert second.complete, second.unavailable
        assert {r["subject"]["version"] for r in store.query(model=name)} == {v.version for v in versions}
        assert store.get_pending(server.uri, pending_key(name, failing.version)) is None
        newest = max(mv.last_updated_timestamp for mv in kit.client.search_model_versions(max_results=1000))
        assert store.watermark(server.uri) == newest
    finally:
        proxy.stop()
