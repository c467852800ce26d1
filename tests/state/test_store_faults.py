"""The Table store under faults, through the tests' fault proxy in front of Azurite's Table
service: throttling (503 ServerBusy), 500 OperationTimedOut and connection resets are
StateStoreUnavailable after a bounded number of attempts; 403 is a ConfigurationError naming the
role. Never an empty answer (that would be "no history": a false GOV-006).

The injected error bodies are the Table service's JSON error format with its error codes
(https://learn.microsoft.com/rest/api/storageservices/table-service-error-codes and
https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes)."""

from __future__ import annotations

import json
import secrets

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import TableClient

from shared.errors import ConfigurationError, StateStoreUnavailable
from shared.state.table import CLIENT_OPTIONS, TableStateStore
from tests.support.azurite import ACCOUNT, ACCOUNT_KEY
from tests.support.proxy import CountingProxy, Fault

REGISTRY = "http://127.0.0.1:5000"


def table_error(status: int, code: str, text: str) -> Fault:
    body = json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": text}}}).encode()
    return Fault(status=status, body=body, headers=(("x-ms-error-code", code),))


SERVER_BUSY = table_error(503, "ServerBusy", "The server is currently unable to receive requests. Please retry your request.")
TIMED_OUT = table_error(500, "OperationTimedOut", "The operation could not be completed within the permitted time.")
FORBIDDEN = table_error(403, "AuthorizationPermissionMismatch",
                        "This request is not authorized to perform this operation using this permission.")


@pytest.fixture()
def faulty(azurite):
    proxy = CountingProxy(f"http://127.0.0.1:{azurite.ports['table']}").start()
    client = TableClient(f"{proxy.uri}/{ACCOUNT}", f"faults{secrets.token_hex(6)}",
                         credential=AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY), **CLIENT_OPTIONS)
    store = TableStateStore(client)
    proxy.reset()
    yield store, proxy
    proxy.stop()


@pytest.mark.parametrize("fault", [SERVER_BUSY, TIMED_OUT, Fault(reset=True)], ids=["throttled", "timeout", "reset"])
def test_transient_trouble_is_state_unavailable_after_bounded_retries(faulty, fault):
    store, proxy = faulty
    proxy.always = fault
    with pytest.raises(StateStoreUnavailable) as raised:
        store.has_passing_registration(REGISTRY, "churn", "1")
    assert raised.value.transient and raised.value.http_status == 503 and raised.value.code == "state_unavailable"
    assert proxy.count() == 1 + CLIENT_OPTIONS["retry_total"]  # bounded: never retried forever
    assert ACCOUNT_KEY not in str(raised.value)
    if fault.status:
        assert str(fault.status) in str(raised.value)


def test_a_throttled_write_keeps_the_watermark(faulty):
    store, proxy = faulty
    store.set_watermark(REGISTRY, 100)
    proxy.faults.extend([Fault(status=None), *[SERVER_BUSY] * 3])  # the read passes, every write attempt is throttled
    with pytest.raises(StateStoreUnavailable):
        store.set_watermark(REGISTRY, 200)
    proxy.reset()
    assert store.watermark(REGISTRY) == 100


def test_one_throttled_request_is_retried_and_succeeds(faulty):
    store, proxy = faulty
    proxy.faults.append(SERVER_BUSY)
    assert store.has_passing_registration(REGISTRY, "churn", "1") is False
    assert proxy.count() == 2


def test_forbidden_is_a_configuration_error_naming_the_role(faulty):
    store, proxy = faulty
    proxy.always = FORBIDDEN
    with pytest.raises(ConfigurationError, match="Storage Table Data Contributor"):
        store.watermark(REGISTRY)
