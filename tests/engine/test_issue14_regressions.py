"""Issue 14's defects, each on the real registry (tests/conftest.py's MLflow server behind the
counting proxy): credentials in URLs and provider tokens planted in params, tags and
descriptions are found and shown redacted; secret references and variable names are not
flagged; one registry written two ways is one history (no false GOV-006). Nested credential
files: tests/engine/test_artifact_tree.py."""

from __future__ import annotations

import uuid

from shared.evidence.registry import display_uri
from shared.report import Trigger
from tests.engine.conftest import rule_ids

PASSWORD = "Pw-4h7dQx9!rT2"
URL_HTTPS = f"https://svc:{PASSWORD}@pypi.internal/simple/"
URL_SQLALCHEMY = f"postgresql+psycopg2://svc:{PASSWORD}@db.internal:5432/features"
OPENAI = "sk-proj-" + "Ab3_-Yz9Qw" * 7 + "T3BlbkFJ" + "x9Y-zK2pLm" * 7
HF = "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzK3q8Lm2Tb"
AWS_ID = "AKIAIOSFODNN7EXAMPLQ"
KV_REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-scoring.vault.azure.net/secrets/scoring-key/)"


def _sec001(report) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in report["findings"]:
        if f["rule_id"] == "SEC-001":
            found.setdefault(f["evidence"]["location"], set()).add(f["evidence"]["kind"])
    return found


def test_urls_provider_tokens_and_a_bare_aws_secret_are_found_everywhere(kit, check):
    name = f"issue14-planted-{uuid.uuid4().hex[:6]}"
    kit.ensure_model(name, tags={"feed": URL_HTTPS}, description=f"Reads the features from {URL_SQLALCHEMY}.")
    trained = kit.model_version(
        name,
        params={"learning_rate": "0.1", "index_url": URL_HTTPS, "features_db": URL_SQLALCHEMY, "aws": AWS_SECRET,
                "aws_id": AWS_ID},
        tags={"llm": OPENAI},
        version_tags={"hub": HF},  # no `owner` tag: the registered model is read (and scanned) too
        description=f"Fine-tuned with {OPENAI} and pushed with {HF}.")
    report = check(trained)
    found = _sec001(report)
    assert found["run.params.index_url"] == {"url-credentials"}
    assert found["run.params.features_db"] == {"url-credentials"}
    assert found["run.params.aws"] == {"aws-secret-access-key"}
    assert found["run.params.aws_id"] == {"aws-access-key-id"}
    assert found["run.tags.llm"] == {"openai-api-key"}
    assert found["version.tags.hub"] == {"huggingface-token"}
    assert found["version.description"] == {"openai-api-key", "huggingface-token"}
    assert found["registered_model.tags.feed"] == {"url-credentials"}
    assert found["registered_model.description"] == {"url-credentials"}
    shown = {f["evidence"]["location"]: f["evidence"]["redacted"] for f in report["findings"] if f["rule_id"] == "SEC-001"}
    assert shown["run.params.aws_id"] == "AKIA…[20 chars, redacted]"
    assert shown["run.tags.llm"] == f"sk-proj-…[{len(OPENAI)} chars, redacted]"
    assert shown["run.params.aws"] == "[40 chars, redacted]"
    text = str(report)
    for secret in (PASSWORD, OPENAI[8:20], HF[3:15], AWS_SECRET[:12], AWS_ID[4:16]):
        assert secret not in text


def test_secret_references_and_variable_names_are_not_credentials(kit, check):
    name = f"issue14-references-{uuid.uuid4().hex[:6]}"
    kit.ensure_model(name, tags={"db_password": "{{secrets/prod/db-password}}"},
                     description='Reads its key with dbutils.secrets.get(scope="prod", key="scoring-key").')
    trained = kit.model_version(
        name,
        params={"learning_rate": "0.1", "api_key": KV_REFERENCE, "scoring_api_key": "SCORING_API_KEY",
                "client_secret": "@Microsoft.KeyVault(VaultName=kv-scoring;SecretName=client-secret)",
                "hf_token": "${HF_TOKEN}", "features_db": "postgresql://svc:${DB_PASSWORD}@db.internal:5432/features",
                "key_vault_uri": "https://kv-scoring.vault.azure.net/secrets/storage-key"},
        tags={"token": "$HF_TOKEN"},
        version_tags={"storage_account_key": "https://kv-scoring.vault.azure.net/secrets/sa/"},  # model read too
        description=f"Scoring key: {KV_REFERENCE}")
    report = check(trained)
    assert _sec001(report) == {}
    assert "SEC-001" not in rule_ids(report)


def test_one_registry_written_two_ways_is_one_history(kit, engine, registry, store):
    """A passing registration checked as ``http://HOST:port/`` and the promotion as ``http://host:port``:
    no false GOV-006, and both reports name the same registry."""
    trained = kit.model_version(f"issue14-uri-{uuid.uuid4().hex[:6]}",
                                version_tags={"owner": "team-churn", "approved_by": "rita"})
    written_one_way = registry.replace("http://", "HTTP://") + "/"
    registration = engine.check_version(written_one_way, trained.model, trained.version, trigger=Trigger("cli", "check"))
    assert registration["verdict"] == "pass", registration["findings"]
    store.save(registration)
    promotion = engine.check_version(registry, trained.model, trained.version, alias="champion",
                                     trigger=Trigger("cli", "check"))
    assert promotion["check"] == "promotion"
    assert "GOV-006" not in rule_ids(promotion)
    assert registration["subject"]["registry"] == promotion["subject"]["registry"] == registry


def test_display_uri_gives_one_identity_per_registry():
    assert display_uri("http://host:5000/") == display_uri("http://HOST:5000") == "http://host:5000"
    assert display_uri("HTTPS://Host:443/mlflow/") == display_uri("https://host/mlflow") == "https://host/mlflow"
    assert display_uri("http://host:80") == "http://host"
    assert display_uri(f"https://svc:{PASSWORD}@Host:8443/") == "https://host:8443"
    assert display_uri("databricks://Prod-Profile:prefix") == "databricks://Prod-Profile:prefix"
    assert display_uri("databricks-uc") == "databricks-uc"
