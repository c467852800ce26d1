from __future__ import annotations

import pytest

from tests.support.servicebus import FakeSender


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def fake_sender_cls() -> type[FakeSender]:
    return FakeSender
