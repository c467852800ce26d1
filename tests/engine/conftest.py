"""Fixtures of the engine tests; the scenarios themselves are tests/support/scenarios.py."""

from __future__ import annotations

import pytest

from shared.engine import Engine
from shared.policy import load_policy
from shared.report import Trigger
from tests.support.scenarios import AZURE_CONN, set_version_columns

__all__ = ["AZURE_CONN", "set_version_columns"]


@pytest.fixture()
def engine(store):
    return Engine(load_policy(), store)


@pytest.fixture()
def check(engine, registry):
    """Run a check through the counting proxy; returns the report."""

    def run(trained, **kwargs):
        return engine.check_version(registry, trained.model, trained.version, trigger=Trigger("cli", "check"), **kwargs)

    return run


def rule_ids(report) -> set[str]:
    return {f["rule_id"] for f in report["findings"] if not f["waived"]}
