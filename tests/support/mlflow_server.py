"""The MLflow server the tests start is the demo's (one implementation: demo/stack.py)."""

from demo.stack import WEBHOOK_ENCRYPTION_KEY, MlflowServer, free_port

__all__ = ["WEBHOOK_ENCRYPTION_KEY", "MlflowServer", "free_port"]
