"""The publisher: what it hands to the SDK sender, and when the event may be acknowledged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    ServiceBusConnectionError,
    ServiceBusError,
    ServiceBusServerBusyError,
)

from shared.errors import EvidenceGateError
from shared.sinks import servicebus as sb


def test_publish_hands_the_exact_message_to_the_sender(report, sender):
    publisher = sb.ServiceBusPublisher(sender.factory, topic="evidence-gate-findings")
    returned = publisher.publish(report, event_id="evt-1")
    assert sender.opened == sender.closed == 1
    [message] = sender.sent
    assert message is returned
    assert isinstance(message, ServiceBusMessage)
    assert b"".join(message.body) == sb.report_json(report)
    assert message.message_id == report["report_id"]
    assert message.correlation_id == "evt-1"
    assert message.subject == "fail"
    assert message.content_type == "application/json"
    assert message.application_properties == sb.application_properties(report)
    assert message.application_properties["verdict"] == "fail"


def test_redelivered_event_publishes_the_same_message_id(report, sender):
    publisher = sb.ServiceBusPublisher(sender.factory)
    publisher.publish(report, event_id="evt-1")
    publisher.publish(report, event_id="evt-1")
    first, second = sender.sent
    assert first.message_id == second.message_id == report["report_id"]
    assert b"".join(first.body) == b"".join(second.body)


@pytest.mark.parametrize("error", [
    ServiceBusError("boom"),
    ServiceBusConnectionError(message="connection lost"),
    ServiceBusServerBusyError(message="busy"),
    CredentialUnavailableError("no managed identity endpoint"),
    ClientAuthenticationError("token request failed"),
    ConnectionResetError("reset"),
    TimeoutError("timed out"),
])
def test_sdk_failures_become_a_transient_publish_error(report, fake_sender_cls, error):
    sender = fake_sender_cls(error=error)
    publisher = sb.ServiceBusPublisher(sender.factory, topic="t")
    with pytest.raises(sb.PublishError) as caught:
        publisher.publish(report, event_id="evt-1")
    assert caught.value.transient is True
    assert isinstance(caught.value, EvidenceGateError)
    assert caught.value.__cause__ is error
    assert report["report_id"] in str(caught.value)
    assert sender.sent == [] and sender.closed == 1


def test_failure_opening_the_sender_is_transient_too(report):
    def factory():
        raise ServiceBusConnectionError(message="namespace unreachable")

    with pytest.raises(sb.PublishError):
        sb.ServiceBusPublisher(factory).publish(report, event_id="e")


def test_programming_errors_are_not_disguised_as_transient(report, fake_sender_cls):
    sender = fake_sender_cls(error=TypeError("bug"))
    with pytest.raises(TypeError):
        sb.ServiceBusPublisher(sender.factory).publish(report, event_id="e")


def test_broker_size_refusal_is_retried_once_with_a_harder_trim(report, fake_sender_cls):
    report["findings"][0]["evidence"] = {"blob": "A" * 200_000}  # fits our budget untrimmed...
    sender = fake_sender_cls(errors=[MessageSizeExceededError(message="too large")])  # ...the broker says no
    message = sb.ServiceBusPublisher(sender.factory).publish(report, event_id="e")
    assert sender.sent == [message]
    body = json.loads(b"".join(message.body))
    assert len(b"".join(message.body)) <= sb.MAX_MESSAGE_BYTES // 2
    assert sb.TRIM_NOTE in body["notes"]
    assert message.message_id == report["report_id"]


def test_acknowledge_only_after_publish_succeeded(report, fake_sender_cls):
    """The caller's pattern: publish first, acknowledge (return normally) only if it did not raise."""
    acked: list[str] = []

    def handle(publisher: sb.ServiceBusPublisher, event_id: str) -> None:
        publisher.publish(report, event_id=event_id)  # raises PublishError -> no ack, event redelivered
        acked.append(event_id)

    failing = fake_sender_cls(error=ServiceBusConnectionError(message="down"))
    with pytest.raises(sb.PublishError):
        handle(sb.ServiceBusPublisher(failing.factory), "evt-1")
    assert acked == []
    # the redelivery succeeds: acknowledged, and the same message id lets duplicate detection work
    healthy = fake_sender_cls()
    handle(sb.ServiceBusPublisher(healthy.factory), "evt-1")
    assert acked == ["evt-1"]
    assert healthy.sent[0].message_id == report["report_id"]


NS = "EVIDENCE_GATE_SERVICEBUS__fullyQualifiedNamespace"


def test_from_settings_is_none_without_a_namespace(monkeypatch):
    monkeypatch.delenv(NS, raising=False)
    assert sb.from_settings() is None
    monkeypatch.setenv(NS, "  ")
    assert sb.from_settings() is None


def test_from_settings_builds_an_identity_based_publisher_without_connecting(monkeypatch):
    monkeypatch.setenv(NS, "sb://eg-prod.servicebus.windows.net/")
    monkeypatch.delenv("EVIDENCE_GATE_TOPIC", raising=False)
    monkeypatch.setenv("EVIDENCE_GATE_SERVICEBUS__clientId", "11111111-2222-3333-4444-555555555555")
    publisher = sb.ServiceBusPublisher.from_settings()
    assert isinstance(publisher, sb.ServiceBusPublisher)
    assert publisher.namespace == "eg-prod.servicebus.windows.net"
    assert publisher.topic == "evidence-gate-findings"
    monkeypatch.setenv("EVIDENCE_GATE_TOPIC", "custom-topic")
    assert sb.from_settings().topic == "custom-topic"


def test_importing_the_sinks_and_telemetry_stays_cheap():
    code = (
        "import sys, shared.sinks.servicebus, shared.telemetry;"
        "heavy = [m for m in ('azure.servicebus', 'azure.identity', 'azure.monitor.opentelemetry')"
        " if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_factory_wiring_with_fake_sdk_classes(monkeypatch, report, fake_sender_cls):
    """The default factory's wiring, with the SDK classes replaced: no network is touched."""
    import azure.identity
    import azure.servicebus

    calls: dict = {}
    sender = fake_sender_cls()

    class FakeCredential:
        def __init__(self, **kwargs):
            calls.setdefault("credential", []).append(kwargs)

    class FakeClient:
        def __init__(self, **kwargs):
            calls["client"] = kwargs

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            calls["client_closed"] = True

        def get_topic_sender(self, **kwargs):
            calls["sender"] = kwargs
            return sender.factory()

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr(azure.servicebus, "ServiceBusClient", FakeClient)
    monkeypatch.setenv(NS, "eg-prod.servicebus.windows.net")
    monkeypatch.setenv("EVIDENCE_GATE_TOPIC", "findings")
    monkeypatch.delenv("EVIDENCE_GATE_SERVICEBUS__clientId", raising=False)
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-from-azure-client-id")

    publisher = sb.from_settings()
    publisher.publish(report, event_id="e1")
    publisher.publish(report, event_id="e2")
    assert calls["credential"] == [{"managed_identity_client_id": "client-from-azure-client-id"}]  # reused
    assert calls["client"]["fully_qualified_namespace"] == "eg-prod.servicebus.windows.net"
    assert isinstance(calls["client"]["credential"], FakeCredential)
    assert calls["client"]["retry_total"] == sb.RETRY_TOTAL
    assert calls["sender"] == {"topic_name": "findings"}
    assert calls["client_closed"] and sender.closed == 2
    assert [m.correlation_id for m in sender.sent] == ["e1", "e2"]
