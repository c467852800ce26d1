"""Credential detection: every supported kind is found, reported by location and redacted form only."""

from __future__ import annotations

import re

import pytest

from shared.secret_scan import credential_file_kind, redact, scan_mapping, scan_value

# The vendors' public prefixes a redacted form may show (none for kinds without one).
PUBLIC_PREFIXES = {"", "AKIA", "eyJ", "dapi", "ghp_"}

KEY88 = "q0Jv1mYQ3rW8e5tZ2xN7cB4aL6pK9sD1fG3hJ5kL7zX9vC2bN4mQ6wE8rT0yU1iO3pA5sD7fG9hJ1kL3zX5vC7=="
PLANTED = {
    "azure-storage-connection-string": f"DefaultEndpointsProtocol=https;AccountName=lake;AccountKey={KEY88};EndpointSuffix=core.windows.net",
    "azure-storage-account-key": KEY88,
    "azure-sas-token": "https://lake.blob.core.windows.net/c/f.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01T00:00:00Z&sig=Zk9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg%3D%3D",
    "servicebus-or-eventhubs-connection-string": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=bXlzZWNyZXRrZXl2YWx1ZTEyMzQ1Njc4OTA=",
    "aws-access-key-id": "AKIAIOSFODNN7EXAMPLQ",
    "aws-secret-access-key": "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "private-key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "databricks-pat": "dapi0123456789abcdef0123456789abcdef",
    "github-token": "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
    "credential-assignment": "host=db.internal;password=Sup3r-S3cret!",
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_each_supported_kind_is_found_and_redacted(kind):
    value = PLANTED[kind]
    hits = scan_value("run.params.x", value)
    assert kind in {h.kind for h in hits}
    for hit in hits:
        assert hit.location == "run.params.x"
        assert value not in hit.redacted
        # at most a well-known public prefix survives, then only the credential's total length
        prefix, _, rest = hit.redacted.rpartition("…")
        assert prefix in PUBLIC_PREFIXES, hit.redacted
        assert re.fullmatch(r"\[\d+ chars, redacted\]", rest), hit.redacted


def test_the_redacted_form_counts_the_whole_credential():
    """Issue 14: ``AKIA…[redacted 20 chars]`` showed 4 characters and counted 20, readable as 24."""
    (hit,) = scan_value("run.params.k", "AKIAIOSFODNN7EXAMPLQ")
    assert hit.redacted == "AKIA…[20 chars, redacted]" == redact("AKIA", 20)
    (hit,) = scan_value("run.params.k", "ghp_" + "a1B2" * 9)
    assert hit.redacted == "ghp_…[40 chars, redacted]"


@pytest.mark.parametrize("value, kind", [
    ("https://svc:Pw-4h7dQx9!@pypi.internal/simple/", "url-credentials"),
    ("postgresql+psycopg2://svc:Pw-4h7dQx9!@db.internal:5432/features", "url-credentials"),
    ("sk-proj-" + "Ab3_-" * 16 + "T3BlbkFJ" + "x9Y-z" * 12, "openai-api-key"),
    ("hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "huggingface-token"),
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-access-key"),
])
def test_issue_14_misses_are_found(value, kind):
    assert kind in {h.kind for h in scan_mapping("run.params", {"setting": value})}


@pytest.mark.parametrize("name, value", [
    ("api_key", "@Microsoft.KeyVault(SecretUri=https://kv-scoring.vault.azure.net/secrets/scoring-key/)"),
    ("db_password", "@Microsoft.KeyVault(VaultName=kv-scoring;SecretName=db-password)"),
    ("hf_token", "https://kv-scoring.vault.azure.net/secrets/hf-token"),
    ("password", "{{secrets/prod/db-password}}"),
    ("token", 'dbutils.secrets.get(scope="prod", key="hf-token")'),
    ("client_secret", "$AZURE_CLIENT_SECRET"),
    ("scoring_api_key", "SCORING_API_KEY"),
    ("conn", "postgresql://svc:${DB_PASSWORD}@db.internal:5432/features"),
])
def test_secret_references_and_variable_names_are_never_flagged(name, value):
    assert scan_mapping("run.params", {name: value}) == []


@pytest.mark.parametrize("value", [
    "DefaultEndpointsProtocol=https;AccountName=lake;AccountKey=q0Jv1mYQ3rW8e5tZ2x-N7cB4aL6pK9sD1fG3hJ5kL7zX9vC2_bN4mQ6wE8;EndpointSuffix=core.windows.net",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=bXlz-ZWNyZXRr_ZXl2YWx1ZTEy",
])
def test_connection_string_keys_in_any_alphabet(value):
    """A key pasted url-safe-encoded or mangled is still a key: the 'AccountKey='/'SharedAccessKey=' context decides."""
    hits = scan_value("run.params.x", value)
    assert hits and all(value not in h.redacted for h in hits)


@pytest.mark.parametrize("name, value", [
    ("api_key", "k3y-for-the-api-2024"),
    ("dbPassword", "hunter2hunter2!"),
    ("client_secret", "Q~8Qx.abcdefghijklmnop"),
    ("hf_token", "hf_abcdefghijklmnopqrstuvwxyz123456"),
])
def test_credential_named_params(name, value):
    hits = scan_mapping("run.params", {name: value})
    assert [h.location for h in hits] == [f"run.params.{name}"]


@pytest.mark.parametrize("name, value", [
    ("learning_rate", "0.001"),
    ("max_tokens", "512"),
    ("tokenizer", "bert-base-uncased"),
    ("password_min_length", "12"),
    ("api_key", "${API_KEY}"),
    ("secret", "<redacted>"),
    ("description", "trained on the 2024 churn snapshot with gradient boosting"),
    ("git_sha", "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"),
    ("data_uri", "abfss://lake@acct.dfs.core.windows.net/churn/train.parquet"),
])
def test_ordinary_params_are_not_credentials(name, value):
    assert scan_mapping("run.params", {name: value}) == []


@pytest.mark.parametrize("name", [".env", "prod.pem", "id_rsa", "credentials.json", "service-account-prod.json",
                                  "keystore.jks", ".git-credentials", "secrets.yaml", "model/.npmrc"])
def test_credential_file_names(name):
    assert credential_file_kind(name) is not None


@pytest.mark.parametrize("name", ["MLmodel", "requirements.txt", "conda.yaml", "model.pkl", "env/", "pem/", "environment.yml"])
def test_ordinary_file_names(name):
    assert credential_file_kind(name) is None
