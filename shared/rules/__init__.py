"""The rule catalog. Each rule lives in its own module named after its id
(``lin_001_no_source_run.py`` holds LIN-001); :func:`catalog` discovers them."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache

from shared.rules.base import Rule

_RULE_MODULE = re.compile(r"^(lin|evd|gov|sec|job|dep)_\d{3}_\w+$")


@cache
def catalog() -> dict[str, Rule]:
    """Every rule, by id, in catalog order."""
    rules: dict[str, Rule] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not _RULE_MODULE.match(info.name):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and value.__module__ == module.__name__:
                rule = value()
                expected = info.name[:7].upper().replace("_", "-")
                if rule.id != expected:
                    raise RuntimeError(f"{info.name} defines {rule.id}; a rule's module must be named after its id")
                rules[rule.id] = rule
    return dict(sorted(rules.items(), key=lambda kv: (_ORDER.index(kv[0][:3]), kv[0])))


_ORDER = ["LIN", "EVD", "GOV", "SEC", "JOB", "DEP"]
