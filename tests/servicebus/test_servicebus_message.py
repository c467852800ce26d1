"""The Service Bus message contract: the exact ServiceBusMessage built for a report."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport

from shared.sinks import servicebus as sb

SCHEMA = json.loads(
    (__import__("pathlib").Path(sb.__file__).resolve().parents[1] / "report.schema.json").read_text()
)


def body_bytes(message: ServiceBusMessage) -> bytes:
    return b"".join(message.body)


def encoded_size(message: ServiceBusMessage) -> int:
    """What the SDK puts on the wire (AMQP-encoded message, headers and properties included)."""
    return PyamqpTransport.get_message_encoded_size(
        PyamqpTransport.to_outgoing_amqp_message(message.raw_amqp_message)
    )


EXPECTED_PROPERTIES = {
    "schema": "evidence-gate/report/v1",
    "verdict": "fail",
    "model": "churn-model",
    "version": "4",
    "alias": "champion",
    "stage": "",
    "source": "mlflow",
    "event_type": "model_version_alias.created",
    "registry": "http://127.0.0.1:5000",
    "check": "promotion",
    "error_count": 2,
    "warning_count": 1,
}


def test_message_matches_the_contract(report):
    message = sb.to_message(report, event_id="evt-42")
    assert isinstance(message, ServiceBusMessage)
    assert body_bytes(message) == json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(body_bytes(message)) == report
    assert message.message_id == report["report_id"]
    assert message.correlation_id == "evt-42"
    assert message.subject == "fail"
    assert message.content_type == "application/json"
    assert message.application_properties == EXPECTED_PROPERTIES
    assert message.session_id is None


def test_property_values_are_flat_strings_or_ints(report):
    props = sb.to_message(report, event_id="e").application_properties
    assert list(props) == list(sb.PROPERTY_NAMES)
    for key, value in props.items():
        assert type(value) is (int if key.endswith("_count") else str), key


def test_correlation_id_defaults_to_the_trigger_event_id(report):
    assert sb.to_message(report, event_id=None).correlation_id == report["trigger"]["event_id"]
    report["trigger"]["event_id"] = None
    assert sb.to_message(report, event_id=None).correlation_id is None


def test_counts_are_unwaived_findings_and_missing_values_are_empty(report):
    report["findings"][0]["waived"] = True  # an error waived: no longer counted
    report["subject"].update(alias=None, stage="Production")
    del report["check"]
    props = sb.to_message(report, event_id="e").application_properties
    assert props["error_count"] == 1
    assert props["warning_count"] == 1
    assert props["alias"] == "" and props["stage"] == "Production" and props["check"] == ""


def test_registry_property_never_carries_url_credentials(report):
    report["subject"]["registry"] = "https://alice:s3cr3t-t0ken@mlflow.example.com:8443/path?token=abc#x"
    props = sb.to_message(report, event_id="e").application_properties
    assert props["registry"] == "https://mlflow.example.com:8443/path"


def test_same_report_gives_the_same_message_id(report):
    again = copy.deepcopy(report)
    assert sb.to_message(report, event_id="a").message_id == sb.to_message(again, event_id="b").message_id


def test_a_report_without_id_is_refused(report):
    del report["report_id"]
    with pytest.raises(ValueError):
        sb.to_message(report, event_id="e")


def test_small_report_is_not_trimmed(report):
    message = sb.to_message(report, event_id="e")
    assert sb.TRIM_NOTE not in json.loads(body_bytes(message))["notes"]
    assert encoded_size(message) < 4096


# --- size limit -----------------------------------------------------------------------------

def _many_findings(report: dict, n: int, evidence_bytes: int) -> dict:
    template = report["findings"][1]
    report["findings"] = [
        dict(copy.deepcopy(template),
             message=f"param 'key_{i}' looks like an Azure storage account key." + " detail" * 20,
             evidence={"location": f"run.params.key_{i}", "kind": "azure-storage-account-key",
                       "redacted": "[88 chars, redacted]", "context": "x" * evidence_bytes,
                       "history": [{"step": s, "value": s * 0.5} for s in range(40)]})
        for i in range(n)
    ]
    report["expired_waivers"] = [{"rule_id": "LIN-005", "model": "*", "reason": "r" * 200}] * 50
    return report


def _assert_fits_and_keeps(message: ServiceBusMessage, original: dict) -> dict:
    body = json.loads(body_bytes(message))
    assert encoded_size(message) <= sb.MAX_MESSAGE_BYTES - 4096, encoded_size(message)
    assert sb.TRIM_NOTE in body["notes"]
    jsonschema.validate(body, SCHEMA)
    assert body["report_id"] == original["report_id"] and body["verdict"] == original["verdict"]
    assert message.message_id == original["report_id"]
    assert message.application_properties["error_count"] == len(
        [f for f in original["findings"] if f["severity"] == "error" and not f["waived"]])
    return body


def test_report_with_3000_findings_worth_of_evidence_is_trimmed_and_keeps_every_finding(report):
    big = _many_findings(report, 1500, evidence_bytes=2000)  # ~5 MB of evidence
    original = copy.deepcopy(big)
    assert len(sb.report_json(big)) > 4 * sb.MAX_MESSAGE_BYTES
    message = sb.to_message(big, event_id="e")
    body = _assert_fits_and_keeps(message, original)
    assert len(body["findings"]) == 1500
    assert [f["rule_id"] for f in body["findings"]] == [f["rule_id"] for f in original["findings"]]
    assert "findings_omitted" not in body
    assert big == original  # the caller's report is never mutated


def test_huge_evidence_values_are_summarised_keys_kept(report):
    report["findings"][0]["evidence"] = {"approval_tag": "approved_by", "blob": "A" * 600_000,
                                         "nested": {"k": list(range(50_000))}}
    report["raw_evidence"] = {"runs": ["r" * 1000] * 100}  # a bulky section outside the contract
    message = sb.to_message(report, event_id="e")
    body = _assert_fits_and_keeps(message, report)
    evidence = body["findings"][0]["evidence"]
    assert set(evidence) == {"approval_tag", "blob", "nested"}
    assert evidence["approval_tag"] == "approved_by"
    assert evidence["blob"].startswith("AAAA") and "more chars" in evidence["blob"]
    assert evidence["nested"].startswith("[object with 1 keys")
    assert [f["rule_id"] for f in body["findings"]] == [f["rule_id"] for f in report["findings"]]
    assert body["findings"][1]["message"] == report["findings"][1]["message"]  # texts untouched at level 1
    assert "raw_evidence" not in body
    assert any("raw_evidence" in n for n in body["notes"])


def test_3000_findings_keep_as_many_full_findings_as_fit_and_count_the_rest(report):
    # 3,000 findings cannot all fit in the schema's finding shape (about 120 bytes each with every
    # text emptied): the documented last resort keeps the most severe ones and counts the rest.
    report = _many_findings(report, 3000, evidence_bytes=300)
    message = sb.to_message(report, event_id="e")
    body = _assert_fits_and_keeps(message, report)
    assert len(body["findings"]) >= 1500
    assert len(body["findings"]) + body["findings_omitted"]["count"] == 3000
    assert body["findings_omitted"]["by_rule"] == {"SEC-001": 3000 - len(body["findings"])}


def test_pathological_report_keeps_most_severe_findings_and_counts_the_rest(report):
    template = report["findings"]
    report["findings"] = [dict(copy.deepcopy(template[i % 4]), title="T" * 200) for i in range(20_000)]
    message = sb.to_message(report, event_id="e")
    body = _assert_fits_and_keeps(message, report)
    omitted = body["findings_omitted"]
    assert len(body["findings"]) + omitted["count"] == 20_000
    assert sum(omitted["by_rule"].values()) == omitted["count"]
    kept = {f["severity"] for f in body["findings"]}
    assert "error" in kept and "info" not in kept  # errors are kept first
    assert any("findings omitted" in n for n in body["notes"])
