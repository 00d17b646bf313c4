"""The exception hierarchy. Every message names what was asked, what came back and what to do."""

from __future__ import annotations


class StagecheckError(Exception):
    """Base of every error stagecheck raises on purpose."""


class ConfigError(StagecheckError):
    """The run's configuration is wrong: unknown target, missing kubeconfig or context."""


class TargetUnreachable(StagecheckError):
    """The selected target's API server did not answer."""


class KubeApiError(StagecheckError):
    """The Kubernetes API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, reason: str, message: str) -> None:
        self.method, self.path, self.status, self.reason, self.api_message = (
            method,
            path,
            status,
            reason,
            message,
        )
        super().__init__(f"{method} {path} -> HTTP {status} {reason}: {message}")


class NotFound(KubeApiError):
    """HTTP 404 from the API."""


class WriteRefused(StagecheckError):
    """A write was about to be sent to a target that does not allow writes in this run."""


class UnknownKind(StagecheckError):
    """The cluster does not serve the kind a feature names."""


class BadArgument(StagecheckError, ValueError):
    """A step argument that cannot be read (a duration, a count)."""


class CannotRunHere(StagecheckError):
    """A check the target cannot perform (a probe pod on nodes that run no containers): the
    scenario is skipped with this reason, never passed."""
