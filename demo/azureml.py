"""`make demo PLATFORM=azureml`: the demo's workspace, the local Azure ML of the tests
(tests/platforms/azureml/local_azureml.py: ARM, the workspace's MLflow endpoint, the run-history
artifact service and the Functions managed-identity endpoint, over TLS on loopback, in front of the
demo's MLflow server).

`evidence-gate serve` reads it as a function app in Azure does, through the SDKs' standard
settings only: the managed identity from ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, the ARM
endpoint from ``ARM_CLOUD_METADATA_URL`` / ``AZUREML_CURRENT_CLOUD``, TLS trust from
``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` (a CA made for the demo), the MLflow endpoint from the
workspace's ``mlFlowTrackingUri``. A registration reaches the function as Event Grid delivers a
``ModelRegistered`` event of the workspace's system topic; a promotion is the model asset's stage
set to Production (as in studio), which Event Grid does not announce, so a reconcile sweep finds it.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from demo.stack import MlflowServer, Stack

WORKSPACE = "ws-churn"
STAGE = "Production"


class DemoWorkspace:
    """The local Azure ML with one workspace, and the settings a function app in its cloud has."""

    def __init__(self, stack: Stack, server: MlflowServer, folder: Path):
        from tests.platforms.azureml.local_azureml import CLOUD, LocalAzureML, certificates

        folder.mkdir(parents=True, exist_ok=True)
        ca, chain, key = certificates(str(folder))
        self.aml = stack.start(LocalAzureML(chain, key).start())
        self.workspace = self.aml.add_workspace(WORKSPACE, server.uri)
        self.environment = {**self.aml.environment(), "AZUREML_CURRENT_CLOUD": CLOUD,
                            "REQUESTS_CA_BUNDLE": ca, "SSL_CERT_FILE": ca}

    @property
    def resource_id(self) -> str:
        return self.workspace.resource_id

    @property
    def tracking_uri(self) -> str:
        return self.workspace.tracking_uri

    def announce(self, eventgrid_url: str, model: str, version: str) -> None:
        """Deliver the version's ``ModelRegistered`` event the way the Functions host's Event Grid
        extension endpoint receives it (the event shape of Azure ML's Event Grid schema docs);
        the local host answers once the function returned, so the report is stored by then."""
        event = {"id": str(uuid.uuid4()), "topic": self.resource_id, "subject": f"models/{model}:{version}",
                 "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
                 "eventTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                 "data": {"modelName": model, "modelVersion": version, "modelTags": {}, "modelProperties": {}},
                 "dataVersion": "2", "metadataVersion": "1"}
        request = urllib.request.Request(eventgrid_url, data=json.dumps([event]).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "aeg-event-type": "Notification"})
        with urllib.request.urlopen(request, timeout=120) as response:
            if response.status != 200:
                raise RuntimeError(f"Event Grid delivery of {model}:{version} answered HTTP {response.status}")

    def promote(self, model: str, version: str) -> None:
        """The version's model asset moved to the Production stage (studio, or models.create_or_update)."""
        self.workspace.set_stage(model, version, STAGE)
