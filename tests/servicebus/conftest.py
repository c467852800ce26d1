from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.support.servicebus import FakeSender

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report-fail.json"


@pytest.fixture
def report() -> dict:
    return copy.deepcopy(json.loads(FIXTURE.read_text()))


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def fake_sender_cls() -> type[FakeSender]:
    return FakeSender
