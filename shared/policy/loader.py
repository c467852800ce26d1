"""Load and validate the policy and waiver files into a :class:`Policy`.

Errors name the file, the key path and what is wrong, e.g.
``policy.yaml: required_metrics.auc.min: Input should be a valid number``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date
from importlib import resources

import yaml
from pydantic import ValidationError

from shared.errors import PolicyError
from shared.policy.model import EffectivePolicy, PolicyDocument, matches, overlay
from shared.policy.waivers import Waiver, load_waivers

BUILTIN = "built-in default policy"


@dataclass
class Policy:
    name: str
    source: str
    base: dict
    document: PolicyDocument
    waivers: list[Waiver] = field(default_factory=list)
    waivers_source: str | None = None
    digest: str = ""

    def for_model(self, model: str) -> EffectivePolicy:
        resolved, applied = dict(self.base), []
        for index, scope in enumerate(self.document.scopes):
            if matches(scope.models, model):
                resolved = overlay(resolved, scope, union_lists=True)
                applied.append(scope.name or f"scopes[{index}]")
        return EffectivePolicy(name=self.name, digest=self.digest, scopes=applied, **resolved)

    def waivers_for(self, model: str, version: str | None, today: date) -> tuple[list[Waiver], list[Waiver]]:
        """(active, expired) waivers that match this model version."""
        matching = [w for w in self.waivers if w.matches(model, version)]
        return [w for w in matching if not w.expired(today)], [w for w in matching if w.expired(today)]


def _read_yaml(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise PolicyError(path, "", f"{what} file not found") from None
    except OSError as exc:
        raise PolicyError(path, "", f"cannot read {what} file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise PolicyError(path, where, f"not valid YAML ({getattr(exc, 'problem', None) or 'syntax error'})") from None
    except RecursionError:
        raise PolicyError(path, "", "not valid YAML (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError(path, "", f"a {what} file must be a YAML mapping at the top level")
    return data


def validation_error(source: str, exc: ValidationError) -> PolicyError:
    errors = exc.errors()
    first = errors[0]
    path = ".".join(str(p) for p in first["loc"])
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        problem = "unknown key"
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return PolicyError(source, path, problem)


def _document(data: dict, source: str) -> PolicyDocument:
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        raise validation_error(source, exc) from None


def _builtin() -> PolicyDocument:
    text = resources.files("shared.policy").joinpath("default.yaml").read_text(encoding="utf-8")
    return _document(yaml.safe_load(text), BUILTIN)


def load_policy(path: str | None = None, waivers_path: str | None = None) -> Policy:
    """The policy at ``path`` (over the built-in default), or the built-in default alone."""
    default = _builtin()
    base = {key: getattr(default, key) for key in default.model_fields if key not in ("name", "waivers_file", "scopes")}
    if path:
        document = _document(_read_yaml(path, "policy"), path)
        base = overlay(base, document, union_lists=False)
        name, source = document.name, path
        if waivers_path is None and document.waivers_file:
            waivers_path = os.path.join(os.path.dirname(os.path.abspath(path)), document.waivers_file)
    else:
        document, name, source = default, default.name, BUILTIN
    waivers = load_waivers(waivers_path, _read_yaml) if waivers_path else []
    policy = Policy(name=name, source=source, base=base, document=document, waivers=waivers, waivers_source=waivers_path)
    policy.digest = _digest(policy)
    return policy


def _digest(policy: Policy) -> str:
    payload = {
        "base": {k: _plain(v) for k, v in policy.base.items()},
        "scopes": [s.model_dump(mode="json") for s in policy.document.scopes],
        "name": policy.name,
        "waivers": [w.model_dump(mode="json") for w in policy.waivers],
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value
