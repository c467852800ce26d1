"""Which Unity Catalog models a reconcile sweep lists: ``EVIDENCE_GATE_UC_SCHEMAS``.

Unset, the sweep lists every registered model the identity may see in the metastore
(``GET /api/2.1/unity-catalog/models`` without a catalog). Set, it is a comma-separated list of
schemas (``catalog.schema``) and catalogs (``catalog``: each of its schemas the identity may use):
only the models there are listed. The UC API lists one schema at a time, ``catalog_name`` and
``schema_name`` together (https://docs.databricks.com/api/workspace/registeredmodels/list: "If
specified, schema_name must be specified"), so a catalog is expanded to its schemas first
(https://docs.databricks.com/api/workspace/schemas/list).

The scope narrows the sweep only; a check of a model outside it (CLI, job notification) works as
before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as dbx_errors

from shared.errors import ConfigurationError

SETTING = "EVIDENCE_GATE_UC_SCHEMAS"
# a UC identifier as written in a name (no dots; backquotes not needed in this setting)
_PART = re.compile(r"^[^.\s`]+$")


@dataclass(frozen=True)
class Scope:
    catalog: str
    schema: str | None = None  # None: every schema of the catalog

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}" if self.schema else self.catalog


def parse(text: str | None) -> tuple[Scope, ...]:
    """The scopes of the setting's value; () when unset. ConfigurationError names a malformed entry."""
    scopes: list[Scope] = []
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        parts = item.split(".")
        if len(parts) > 2 or not all(_PART.match(p) for p in parts):
            raise ConfigurationError(f"{SETTING}: '{item[:100]}' is neither a catalog nor catalog.schema")
        scope = Scope(parts[0], parts[1] if len(parts) == 2 else None)
        if scope not in scopes:
            scopes.append(scope)
    return tuple(scopes)


def list_models(w: WorkspaceClient, scopes: tuple[Scope, ...]) -> list[tuple[str, int]]:
    """(full name, ``updated_at`` epoch ms) of each registered model in ``scopes`` (every model the
    identity may see when there is none). The SDK follows each listing's ``next_page_token``."""
    if not scopes:
        # https://docs.databricks.com/api/workspace/registeredmodels/list (the whole metastore)
        return [(m.full_name, m.updated_at or 0) for m in w.registered_models.list()]
    found: dict[str, int] = {}
    for scope in scopes:
        for schema in _schemas(w, scope):
            try:
                models = list(w.registered_models.list(catalog_name=scope.catalog, schema_name=schema))
            except dbx_errors.NotFound:
                raise _missing(f"schema '{scope.catalog}.{schema}'") from None
            for m in models:
                found[m.full_name] = m.updated_at or 0
    return list(found.items())


def _schemas(w: WorkspaceClient, scope: Scope) -> list[str]:
    if scope.schema is not None:
        return [scope.schema]
    try:
        # max_results=0: the paginated form the API recommends
        return [s.name for s in w.schemas.list(catalog_name=scope.catalog, max_results=0) if s.name]
    except dbx_errors.NotFound:
        raise _missing(f"catalog '{scope.catalog}'") from None


def _missing(what: str) -> ConfigurationError:
    return ConfigurationError(f"{SETTING} names {what}, which Unity Catalog does not have or this identity cannot"
                              " see (it needs USE CATALOG and USE SCHEMA)")
