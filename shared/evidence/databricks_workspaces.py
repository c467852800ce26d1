"""Other Databricks workspaces a Unity Catalog version's run may live in:
``EVIDENCE_GATE_DATABRICKS_WORKSPACES``.

A UC model version names the workspace of its source run (``run_workspace_id``; MLflow's UC path:
``run_tracking_server_id``). When that is not the registry's workspace, the run, its logged model
and their artifacts are read in that workspace if this setting names it; otherwise the run is
reported unreadable (EVD-008), never missing.

The value is a comma-separated list of ``<workspace id>=<host>`` (the same credentials as the
registry's workspace: a service principal added to both workspaces) or ``<workspace id>=<profile>``
(a ``~/.databrickscfg`` profile with its own host and credentials), e.g.
``6543210987654321=https://adb-6543210987654321.1.azuredatabricks.net``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigurationError

SETTING = "EVIDENCE_GATE_DATABRICKS_WORKSPACES"


@dataclass(frozen=True)
class Workspace:
    host: str | None = None  # the registry's credentials, this host
    profile: str | None = None  # a profile: its host and credentials


def parse(text: str | None) -> dict[str, Workspace]:
    """Workspace id -> where to reach it; ConfigurationError names a malformed entry."""
    out: dict[str, Workspace] = {}
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        workspace_id, sep, target = (s.strip() for s in item.partition("="))
        if not sep or not workspace_id.isdigit() or not target or any(c.isspace() for c in target):
            raise ConfigurationError(f"{SETTING}: '{item[:100]}' is not <workspace id>=<host or profile>")
        if target.startswith(("https://", "http://")):
            out[workspace_id] = Workspace(host=target.rstrip("/"))
        elif "/" in target or ":" in target:
            raise ConfigurationError(f"{SETTING}: '{item[:100]}' names neither an https:// host nor a profile")
        else:
            out[workspace_id] = Workspace(profile=target)
    return out
