"""docs/rules.md is generated from the code: it fails here when a rule changes and the doc does not."""

from pathlib import Path

from shared.catalog_doc import markdown
from shared.rules import catalog

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_rules_doc_matches_the_code():
    assert DOC.read_text() == markdown(), "docs/rules.md is stale: run `evidence-gate rules > docs/rules.md`"


def test_every_rule_is_complete_and_in_a_file_named_after_it():
    assert len(catalog()) == 25
    for rule_id, rule in catalog().items():
        module = type(rule).__module__.rsplit(".", 1)[-1]
        assert module.startswith(rule_id.lower().replace("-", "_") + "_")
        assert rule.title and rule.remediation and rule.severity in ("error", "warning", "info")
        assert rule.checks


def test_rules_command_prints_the_catalog(capsys):
    import json

    from shared.cli import main

    assert main(["rules"]) == 0
    assert capsys.readouterr().out == markdown()
    assert main(["rules", "--format", "json"]) == 0
    rules = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rules] == list(catalog())
