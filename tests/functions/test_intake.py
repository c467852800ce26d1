"""Durable intake with real parts: two `evidence-gate serve` processes (two instances) sharing one
intake queue and one Table state store on Azurite, a real MLflow server of their own behind the
fault proxy, and the Service Bus message ids each instance publishes
(tests/support/capturing_serve.py). Deliveries are answered 202 and checked from the queue."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import mlflow
import pytest
from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy

from demo.stack import MlflowServer, free_port
from tests.functions.conftest import FunctionsKit, mlflow_headers, payload, unique
from tests.functions.test_scale_out import state_store
from tests.functions.test_serve import REPO, http, wait_for
from tests.support.kit import Trained
from tests.support.proxy import CountingProxy, Fault

MLFLOW_SECRET = "test-mlflow-webhook-secret"
VISIBILITY_SECONDS = 5  # a killed instance's messages are visible to the other one again after this


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory):
    """A registry of its own behind a fault proxy; ``make(name, n)`` registers n more fully evidenced
    versions of ``name`` from one logged model (one registry call each)."""
    server = MlflowServer(str(tmp_path_factory.mktemp("mlflow-intake"))).start()
    proxy = CountingProxy(server.uri).start()
    try:
        before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        kit = FunctionsKit(server.uri)
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        base = kit.model_version(unique("intake-base"))
    except BaseException:  # no server left behind when the setup fails
        proxy.stop()
        server.stop()
        raise

    def make(name: str, n: int) -> list[Trained]:
        kit.ensure_model(name)
        out = []
        for _ in range(n):
            mv = kit.client.create_model_version(name, source=f"models:/{base.model_id}", run_id=base.run_id,
                                                 tags={"owner": "team-churn"}, await_creation_for=0)
            out.append(Trained(name, str(mv.version), base.run_id, base.model_id))
        return out

    yield proxy, kit, make
    proxy.stop()
    server.stop()


class Cluster:
    """Two serve instances on one queue and one state table; ``kill``/``start`` one of them."""

    def __init__(self, proxy: CountingProxy, azurite, workdir: Path):
        self.azurite, self.workdir = azurite, workdir
        self.queue_name = f"intake-{secrets.token_hex(4)}"
        self.table = f"intake{secrets.token_hex(6)}"
        self.env = dict(os.environ, MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_WEBHOOK_SECRET=MLFLOW_SECRET,
                        EVIDENCE_GATE_STATE=azurite.connection_string, EVIDENCE_GATE_STATE_TABLE=self.table,
                        EVIDENCE_GATE_INTAKE=azurite.connection_string, EVIDENCE_GATE_INTAKE_QUEUE=self.queue_name,
                        EVIDENCE_GATE_INTAKE_VISIBILITY_SECONDS=str(VISIBILITY_SECONDS),
                        EVIDENCE_GATE_INTAKE_NOT_READY_SECONDS="2", PYTHONPATH=str(REPO))
        for name in ("TEAMS_WEBHOOK_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING", "EVIDENCE_GATE_POLICY",
                     "EVIDENCE_GATE_WAIVERS", "EVIDENCE_GATE_STATE__tableServiceUri", "EVIDENCE_GATE_INTAKE__queueServiceUri"):
            self.env.pop(name, None)
        self.procs: list[subprocess.Popen | None] = [None, None]
        self.urls = ["", ""]
        self.store = state_store(azurite, self.table)

    def start(self, i: int) -> None:
        port = free_port()
        label = "ab"[i]
        env = dict(self.env, EVIDENCE_GATE_TEST_MESSAGE_IDS=str(self.workdir / f"message-ids-{label}.txt"),
                   EVIDENCE_GATE_STORE=str(self.workdir / f"unused-{label}.sqlite"))
        log = open(self.workdir / f"serve-{label}.log", "a")
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.capturing_serve", "--port", str(port)], cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 90
        while not _listening(port):
            assert proc.poll() is None, (self.workdir / f"serve-{label}.log").read_text()
            assert time.monotonic() < deadline, f"evidence-gate serve did not listen on {port}"
            time.sleep(0.2)
        self.procs[i], self.urls[i] = proc, f"http://127.0.0.1:{port}/api/webhooks/mlflow"

    def kill(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def message_ids(self) -> list[str]:
        ids = []
        for label in "ab":
            path = self.workdir / f"message-ids-{label}.txt"
            if path.exists():
                ids += path.read_text().split()
        return ids

    def client(self, poison: bool = False) -> QueueClient:
        name = self.queue_name + ("-poison" if poison else "")
        return QueueClient.from_connection_string(self.azurite.connection_string, name,
                                                  message_encode_policy=TextBase64EncodePolicy(),
                                                  message_decode_policy=BinaryBase64DecodePolicy())

    def queue_empty(self) -> bool:
        """No message left, visible or in flight (the count includes invisible messages)."""
        return self.client().get_queue_properties().approximate_message_count == 0

    def reports(self, model: str) -> list[dict]:
        return self.store.query(model=model, limit=10_000)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def cluster(own_registry, azurite, tmp_path_factory):
    proxy, _, _ = own_registry
    workdir = tmp_path_factory.mktemp("intake-cluster")
    cluster = Cluster(proxy, azurite, workdir)
    cluster.start(0)
    cluster.start(1)
    yield cluster
    cluster.stop()
    assert not list(workdir.glob("unused-*.sqlite"))  # the shared store, not a local file


def created(name: str, version: str, delivery_id: str | None = None) -> tuple[bytes, dict]:
    body = payload("mlflow-model-version-created.json")
    body["data"].update(name=name, version=version, run_id=None)
    raw = json.dumps(body).encode()
    return raw, mlflow_headers(raw, delivery_id=delivery_id)


def post(url: str, raw: bytes, headers: dict) -> tuple[int, dict]:
    status, out = http("POST", url, raw, headers)
    return status, json.loads(out)



def test_a_delivery_is_answered_202_and_its_report_is_stored(cluster, own_registry):
    _, _, make = own_registry
    name = unique("intake-one")
    (v,) = make(name, 1)
    raw, headers = created(v.model, v.version)
    status, body = post(cluster.urls[0], raw, headers)
    assert status == 202, body
    assert body == {"event_id": headers["X-MLflow-Delivery-Id"], "event_type": "model_version.created",
                    "status": "accepted"}
    (report,) = wait_for(lambda: cluster.reports(name), 60)
    assert report["verdict"] == "pass" and report["subject"]["version"] == v.version
    assert report["trigger"]["event_id"] == headers["X-MLflow-Delivery-Id"]
    wait_for(lambda: report["report_id"] in cluster.message_ids(), 10)


def test_twenty_duplicate_deliveries_over_both_instances_give_one_report_and_one_message_id(cluster, own_registry):
    _, _, make = own_registry
    name = unique("intake-dup")
    (v,) = make(name, 1)
    raw, headers = created(v.model, v.version)  # one delivery, sent 20 times
    before = len(cluster.message_ids())
    answers = [None] * 20

    def send(i: int) -> None:
        answers[i] = post(cluster.urls[i % 2], raw, headers)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in answers] == [202] * 20, answers
    wait_for(lambda: cluster.reports(name) and cluster.queue_empty(), 90)
    (report,) = cluster.reports(name)
    assert set(cluster.message_ids()[before:]) == {report["report_id"]}


def test_a_version_whose_run_is_still_running_is_reported_when_the_run_ends(cluster, own_registry):
    proxy, kit, _ = own_registry
    trained = kit.model_version(unique("intake-running"), run_status="RUNNING")
    raw, headers = created(trained.model, trained.version)
    proxy.reset()
    assert post(cluster.urls[1], raw, headers)[0] == 202
    path = f"/model-versions/get?name={trained.model}"
    wait_for(lambda: sum(path in p for _, p in proxy.requests) >= 2, 30)  # checked, not ready, checked again
    assert cluster.reports(trained.model) == []
    kit.client.set_terminated(trained.run_id, "FINISHED")
    (report,) = wait_for(lambda: cluster.reports(trained.model), 60)
    assert report["verdict"] == "pass" and "LIN-002" not in {f["rule_id"] for f in report["findings"]}
    assert report["subject"]["run_id"] == trained.run_id


def test_a_message_that_is_not_an_intake_message_ends_in_the_poison_queue_with_its_reason(cluster):
    marker = f"garbage-{uuid.uuid4().hex}"
    cluster.client().send_message(f"this is not an intake message {marker}")

    def poisoned():
        for message in cluster.client(poison=True).peek_messages(max_messages=32):
            letter = json.loads(message.content)
            if marker in str(letter["message"]):
                return letter
        return None

    letter = wait_for(poisoned, 30)
    assert letter["reason"] == "not an intake message: the body is not JSON"
    assert letter["message"] == f"this is not an intake message {marker}"
    wait_for(cluster.queue_empty, 30)  # dead-lettered, not retried


def test_killing_one_instance_mid_burst_loses_no_event(cluster, own_registry):
    _, _, make = own_registry
    name = unique("intake-kill")
    versions = make(name, 30)
    statuses = []
    for i, v in enumerate(versions):
        if i == 12:
            cluster.kill(0)  # SIGKILL while it holds messages in flight
        target = cluster.urls[i % 2] if i < 12 else cluster.urls[1]
        statuses.append(post(target, *created(v.model, v.version))[0])
    assert statuses == [202] * 30
    try:
        reports = wait_for(lambda: (r := cluster.reports(name)) and len(r) >= 30 and r, 120)
        assert sorted(int(r["subject"]["version"]) for r in reports) == sorted(int(v.version) for v in versions)
    finally:
        cluster.start(0)


def test_a_two_minute_registry_outage_during_50_registrations_is_caught_up_within_a_minute(cluster, own_registry):
    proxy, _, make = own_registry
    name = unique("intake-outage")
    versions = make(name, 50)
    proxy.reset()
    proxy.always = Fault(status=503)
    outage_start = time.monotonic()
    try:
        statuses = [post(cluster.urls[i % 2], *created(v.model, v.version))[0] for i, v in enumerate(versions)]
        assert statuses == [202] * 50
        time.sleep(max(0.0, 120 - (time.monotonic() - outage_start)))
        failed_during_outage = len(proxy.requests)
    finally:
        proxy.always = None
    returned = time.monotonic()
    assert cluster.reports(name) == []
    assert failed_during_outage > 100  # the checks were retried during the outage (no sweep runs: --no-timer)
    reports = wait_for(lambda: (r := cluster.reports(name)) and len(r) >= 50 and r, 90)
    caught_up = time.monotonic() - returned
    print(f"intake: 50 versions reported {caught_up:.1f} s after a 120 s registry outage ended (goal 60 s)")
    assert caught_up <= 60
    assert sorted(int(r["subject"]["version"]) for r in reports) == sorted(int(v.version) for v in versions)
    assert {r["verdict"] for r in reports} == {"pass"}
