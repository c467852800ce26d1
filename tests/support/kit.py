"""Builders for real registry data: runs, logged models and model versions of every shape."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from functools import cached_property

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag

GIT_COMMIT = "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
MLMODEL_NO_ENV = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.7
signature:
  inputs: '[{"type": "double", "name": "x"}]'
  outputs: '[{"type": "long"}]'
mlflow_version: 3.15.0
"""


@dataclass
class Trained:
    model: str
    version: str
    run_id: str | None
    model_id: str | None = None


class RegistryKit:
    def __init__(self, uri: str):
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        self.experiment_id = self._experiment("evidence-gate-tests")

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found else self.client.create_experiment(name)

    @cached_property
    def sklearn_model(self):
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(7)
        x = rng.random((40, 3))
        y = (x[:, 0] > 0.5).astype(int)
        return LogisticRegression().fit(x, y), x[:2]

    def ensure_model(self, name: str, tags: dict | None = None, description: str | None = None) -> None:
        try:
            self.client.create_registered_model(name, tags=tags, description=description)
        except mlflow.exceptions.MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def run(self, *, params=None, metrics=None, tags=None, dataset=True, git_commit=GIT_COMMIT, source_type="JOB",
            user="carol", artifacts: dict[str, str] | None = None, start_time: int | None = None) -> str:
        run_tags = {"mlflow.source.type": source_type, "mlflow.user": user}
        if git_commit:
            run_tags["mlflow.source.git.commit"] = git_commit
        run_tags.update(tags or {})
        run = self.client.create_run(self.experiment_id, tags=run_tags, start_time=start_time)
        run_id = run.info.run_id
        for key, value in (params if params is not None else {"learning_rate": "0.1", "max_iter": "100"}).items():
            self.client.log_param(run_id, key, value)
        for key, value in (metrics if metrics is not None else {"accuracy": 0.91, "auc": 0.93}).items():
            self.client.log_metric(run_id, key, value)
        if dataset:
            ds = Dataset(name="churn-train", digest="d41d8cd9", source_type="s3",
                         source=json.dumps({"uri": "s3://datalake/churn/train.parquet"}))
            self.client.log_inputs(run_id, [DatasetInput(ds, tags=[InputTag("mlflow.data.context", "training")])])
        for name, text in (artifacts or {}).items():
            self.client.log_text(run_id, text, name)
        return run_id

    def model_version(self, name: str, *, style: str = "mlflow3", run_status: str = "FINISHED",
                      signature: bool = True, version_tags: dict | None = None, description: str | None = None,
                      model_tags: dict | None = None, delete_run: bool = False, source: str | None = None,
                      code_files: dict[str, str] | None = None, **run_kwargs) -> Trained:
        """A registered model version; the defaults give a fully evidenced MLflow 3 model.

        ``source``: the artifact location of an ``orphan`` (a version with no run).
        ``code_files``: files (name -> text) ``log_model`` copies into the model's ``code/`` directory."""
        self.ensure_model(name, tags=model_tags)
        tags = {"owner": "team-churn"} if version_tags is None else version_tags
        if style == "orphan":
            mv = self.client.create_model_version(name, source=source or f"mlflow-artifacts:/orphans/{uuid.uuid4().hex}/model",
                                                  tags=tags, description=description)
            return Trained(name, str(mv.version), None)
        run_id = self.run(**run_kwargs)
        model_id = None
        if style in ("mlflow3", "mlflow3_no_run_id"):
            model, example = self.sklearn_model
            with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as code_dir:
                code_paths = []
                for file_name, text in (code_files or {}).items():
                    code_paths.append(os.path.join(code_dir, file_name))
                    with open(code_paths[-1], "w") as fh:
                        fh.write(text)
                info = mlflow.sklearn.log_model(model, name="model", input_example=example if signature else None,
                                                pip_requirements=["scikit-learn==1.9.1"], code_paths=code_paths or None)
            model_id = info.model_id
            source = f"models:/{model_id}"
            mv_run_id = run_id if style == "mlflow3" else None
        elif style in ("no_env", "artifact_path", "runs_uri"):
            with tempfile.TemporaryDirectory() as tmp:
                with open(os.path.join(tmp, "MLmodel"), "w") as fh:
                    fh.write(MLMODEL_NO_ENV)
                self.client.log_artifacts(run_id, tmp, "model")
            if style == "artifact_path":
                history = [{"run_id": run_id, "artifact_path": "model", "flavors": {"python_function": {}}}]
                self.client.set_tag(run_id, "mlflow.log-model.history", json.dumps(history))
            artifact_uri = self.client.get_run(run_id).info.artifact_uri
            source = f"runs:/{run_id}/model" if style == "runs_uri" else f"{artifact_uri}/model"
            mv_run_id = run_id if style == "no_env" else None
        else:
            raise ValueError(style)
        self.client.set_terminated(run_id, run_status)
        mv = self.client.create_model_version(name, source=source, run_id=mv_run_id, tags=tags, description=description)
        if delete_run:
            self.client.delete_run(run_id)
        return Trained(name, str(mv.version), run_id, model_id)
