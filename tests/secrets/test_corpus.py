"""Issue 14's goals on the labelled corpus (tests/secrets/corpus.py): recall 1.00 on every kind
shared/secret_scan.py claims, zero false positives on the look-alikes, per kind and category; the
reported kind is the right one; the redacted form shows only a public prefix and the length."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from shared.secret_scan import KINDS, scan_value
from tests.secrets.corpus import corpus

SECRETS, LOOKALIKES = corpus()
WINDOW = 12
REDACTED = re.compile(r"^(?:(?P<prefix>[^…\s]{2,12})…)?\[(?P<length>\d+) chars, redacted\]$")


def test_the_corpus_is_large_balanced_and_deterministic():
    assert len(SECRETS) >= 300 and len(LOOKALIKES) >= len(SECRETS)
    assert {s.label for s in SECRETS} == {k.name for k in KINDS}, "every claimed kind has samples, and only those"
    assert corpus() == (SECRETS, LOOKALIKES)
    assert len({s.value for s in SECRETS}) == len(SECRETS)


def _by_label(samples):
    groups = defaultdict(list)
    for sample in samples:
        groups[sample.label].append(sample)
    return sorted(groups.items())


@pytest.mark.parametrize("kind, samples", _by_label(SECRETS), ids=[k for k, _ in _by_label(SECRETS)])
def test_recall_is_one_per_kind_with_the_right_kind(kind, samples):
    missed = [s.value[:60] for s in samples if not scan_value("x", s.value, name=s.name)]
    assert not missed, f"{kind}: recall {1 - len(missed) / len(samples):.2f}, missed {missed}"
    wrong = [(s.value[:60], [h.kind for h in scan_value("x", s.value, name=s.name)]) for s in samples
             if not s.kinds & {h.kind for h in scan_value("x", s.value, name=s.name)}]
    assert not wrong, f"{kind}: reported as another kind: {wrong}"


@pytest.mark.parametrize("label, samples", _by_label(LOOKALIKES), ids=[k for k, _ in _by_label(LOOKALIKES)])
def test_no_false_positive_per_lookalike_category(label, samples):
    flagged = [(s.name, s.value[:80], [h.kind for h in scan_value("x", s.value, name=s.name)]) for s in samples
               if scan_value("x", s.value, name=s.name)]
    assert not flagged, f"{label}: false-positive rate {len(flagged) / len(samples):.2f}: {flagged}"


@pytest.mark.parametrize("kind, samples", _by_label(SECRETS), ids=[k for k, _ in _by_label(SECRETS)])
def test_redacted_form_is_a_public_prefix_and_the_length_only(kind, samples):
    for sample in samples:
        for hit in scan_value("x", sample.value, name=sample.name):
            shown = REDACTED.match(hit.redacted)
            assert shown, hit.redacted
            length = int(shown["length"])
            assert length <= len(sample.value)
            prefix = shown["prefix"] or ""
            assert prefix == "" or sample.value.find(prefix) >= 0
            windows = {sample.secret[i:i + WINDOW] for i in range(max(len(sample.secret) - WINDOW + 1, 0))}
            assert not any(w in hit.redacted for w in windows), hit.redacted
