from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report-fail.json"


class FakeSender:
    """Stands in for the SDK's topic sender: records the exact ServiceBusMessage objects."""

    def __init__(self, error: BaseException | None = None, errors: list[BaseException] | None = None):
        self.sent: list[Any] = []
        self.errors = list(errors or ([error] if error else []))
        self.opened = 0
        self.closed = 0

    def send_messages(self, message: Any) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)

    @contextmanager
    def factory(self) -> Iterator[FakeSender]:
        self.opened += 1
        try:
            yield self
        finally:
            self.closed += 1


@pytest.fixture
def report() -> dict:
    return copy.deepcopy(json.loads(FIXTURE.read_text()))


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def fake_sender_cls() -> type[FakeSender]:
    return FakeSender
