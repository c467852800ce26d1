"""Benchmark 1: registry requests per check, counted at the server (a counting HTTP proxy in front
of a real MLflow server). Goal: registration <= 6, promotion <= 9 for a normal MLflow 3 model
(sklearn model logged with ``mlflow.sklearn.log_model``, run id on the version, ``models:/m-<id>``),
plus one artifact list per subdirectory (SEC-002 walks the artifact tree): a model logged with
``code_paths`` (a ``code/`` directory) <= 7."""

from __future__ import annotations

import logging
import os
import tempfile

from bench.common import counting_proxy, header, mlflow_server, table, verdict

GOALS = {"registration": 6, "promotion": 9}
CODE_DIR_GOAL = 7  # registration of a model with a code/ directory: one list request more


def main() -> int:
    header("registry requests per check")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from shared.engine import Engine
    from shared.policy import load_policy
    from shared.report import Trigger
    from shared.sinks.store import ReportStore
    from tests.support.kit import RegistryKit

    rows, ok = [], True
    with mlflow_server() as server, counting_proxy(server.uri) as proxy, tempfile.TemporaryDirectory() as tmp:
        kit = RegistryKit(server.uri)
        v1 = kit.model_version("bench-churn", version_tags={"owner": "team-churn", "approved_by": "rita"})
        v2 = kit.model_version("bench-churn", version_tags={"owner": "team-churn", "approved_by": "rita"})
        v3 = kit.model_version("bench-churn", version_tags={"owner": "team-churn", "approved_by": "rita"},
                               code_files={"train.py": "print('train')\n"})
        kit.client.set_registered_model_alias("bench-churn", "champion", v1.version)
        engine = Engine(load_policy(), ReportStore(os.path.join(tmp, "reports.sqlite")))
        trigger = Trigger("cli", "check", None, None)
        cases = [
            ("registration", "v1 (first check of the model)", dict(version=v1.version)),
            ("registration", "v2", dict(version=v2.version)),
            ("registration", "v3 (model with a code/ directory)", dict(version=v3.version)),
            ("promotion", "v1 -> champion (no previous holder)", dict(version=v1.version, alias="champion")),
            ("promotion", "v2 -> champion (v1 holds it: previous holder fetched)", dict(version=v2.version, alias="champion")),
        ]
        for check, label, kwargs in cases:
            proxy.reset()
            report = engine.check_version(proxy.uri, "bench-churn", trigger=trigger, **kwargs)
            engine.store.save(report)
            counted = proxy.count()
            assert report["check"] == check, report["check"]
            goal = CODE_DIR_GOAL if "code/" in label else GOALS[check]
            met = counted <= goal
            ok &= met
            rows.append((f"{check}: {label}", counted, f"<= {goal}", verdict(met)))
            print(f"  {check:<12} {label:<55} {counted} requests: " + " ".join(p.split("?")[0].rsplit("/", 2)[-2] + "/"
                  + p.split("?")[0].rsplit("/", 1)[-1] for _, p in proxy.requests)[:200])
    print(table("Registry requests per check (counted at the server)", rows))
    return 0  # figures, not a gate: the table says whether each goal was met


if __name__ == "__main__":
    raise SystemExit(main())
