"""`make serve`: the local stack, left running until Ctrl-C.

Against your own MLflow server when MLFLOW_TRACKING_URI is set, or a local one (files under
.demo/serve/) otherwise. Prints the webhook URL and secret to register and the command that
registers it; reports go to the local store, cards to TEAMS_WEBHOOK_URL when set (or a local
endpoint that saves them under .demo/serve/teams/).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

from demo.stack import MlflowServer, ServeProcess, Stack, TeamsInbox

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".demo" / "serve"


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("PORT", "7071"))
    try:
        with Stack() as stack:
            tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
            local = not tracking_uri
            if local:
                print("MLFLOW_TRACKING_URI is not set: starting a local MLflow server (SQLite, .demo/serve/mlflow)")
                server = MlflowServer(str(FOLDER / "mlflow"), port=5000 if _free(5000) else None)
                tracking_uri = stack.start(server.start()).uri
            secret = os.environ.get("MLFLOW_WEBHOOK_SECRET") or _session_secret()
            teams = os.environ.get("TEAMS_WEBHOOK_URL")
            if not teams:
                teams = stack.start(TeamsInbox(str(FOLDER / "teams"))).url
            store = os.environ.get("EVIDENCE_GATE_STORE") or str(FOLDER / "reports.sqlite")
            env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, MLFLOW_WEBHOOK_SECRET=secret,
                       TEAMS_WEBHOOK_URL=teams, EVIDENCE_GATE_STORE=store)
            serve = stack.start(ServeProcess(env, str(FOLDER / "serve.log"), port=port, extra_args=("--notify-interval", "10")))
            webhook = f"{serve.url}/api/webhooks/mlflow"
            teams_shown = "TEAMS_WEBHOOK_URL" if os.environ.get("TEAMS_WEBHOOK_URL") else ".demo/serve/teams/ (local endpoint)"
            events = ["model_version.created", "model_version_alias.created", "model_version_tag.set"]
            print(f"""
Evidence Gate is running.
  MLflow registry   {tracking_uri}
  webhook URL       {webhook}
  report store      {store}
  Teams cards       {teams_shown}
  log               {os.path.relpath(FOLDER / 'serve.log', ROOT)}
""", flush=True)
            if local:
                from mlflow import MlflowClient

                MlflowClient(tracking_uri).create_webhook(name="evidence-gate", url=webhook, secret=secret, events=events)
                print("The webhook is registered on the local MLflow server: register or promote a model there.")
            else:
                where = "MLFLOW_WEBHOOK_SECRET" if os.environ.get("MLFLOW_WEBHOOK_SECRET") else f"the file {_SECRET_FILE}"
                print(f"""Register the webhook on your MLflow server (run it with MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true and
MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https so it may deliver to this machine); the secret is in {where}:

  .venv/bin/python -c "import os; from mlflow import MlflowClient; MlflowClient('{tracking_uri}').create_webhook(
      name='evidence-gate', url='{webhook}', secret=<the secret>, events={events})"
""")
            print(f"Reports: .venv/bin/evidence-gate reports --store {store}\nCtrl-C stops everything.", flush=True)
            while serve.proc.poll() is None:
                time.sleep(1)
            print(f"evidence-gate serve exited; see {serve.log_path}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0


_SECRET_FILE = FOLDER / "webhook-secret"


def _session_secret() -> str:
    """A webhook secret for this machine, kept in a file readable only by you (never printed)."""
    if _SECRET_FILE.exists():
        return _SECRET_FILE.read_text().strip()
    secret = secrets.token_urlsafe(24)
    fd = os.open(_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


if __name__ == "__main__":
    sys.exit(main())
