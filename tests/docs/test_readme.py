"""The README tells the truth: every setting, every route, every command is documented there."""

from pathlib import Path

from shared import settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme():
    missing = [name for name in settings.names() if f"`{name}`" not in README]
    assert missing == []


def test_every_route_and_command_is_in_the_readme():
    import function_app

    for fn in function_app.functions():
        assert f"`{fn.get_function_name()}`" in README
    for route in ("/api/webhooks/mlflow", "/api/webhooks/databricks/registry", "/api/webhooks/databricks/jobs",
                  "/runtime/webhooks/eventgrid?functionName=azureml_events"):
        assert route in README
    for command in ("check", "serve", "reconcile", "reports", "rules"):
        assert f"`evidence-gate {command}" in README
    for target in ("make demo", "make test", "make serve"):
        assert target in README
