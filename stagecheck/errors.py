"""The exception hierarchy. Every message names what was asked, what came back and what to do."""

from __future__ import annotations


class StagecheckError(Exception):
    """Base of every error stagecheck raises on purpose."""


class ConfigError(StagecheckError):
    """The run's configuration is wrong: unknown target, missing kubeconfig or context."""


class KubeconfigError(ConfigError):
    """A kubeconfig that cannot be used: not YAML, a field of the wrong type, a context that is
    not there, or something stagecheck cannot do (named, never with its value)."""


class TargetUnreachable(StagecheckError):
    """The selected target's API server did not answer."""


class ServerNotTrusted(TargetUnreachable):
    """The API server answered, but its certificate is not one the kubeconfig trusts."""


class CredentialError(StagecheckError):
    """No credential could be had: a token file unreadable, an exec plugin missing or failing."""


class KubeApiError(StagecheckError):
    """The Kubernetes API answered with an error status."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        reason: str,
        message: str,
        explanation: str | None = None,
        causes: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.method, self.path, self.status, self.reason, self.api_message = (
            method,
            path,
            status,
            reason,
            message,
        )
        # The Status's details.causes[] as (field, message): one per rejected field on a 422.
        self.causes = causes
        super().__init__(explanation or f"{method} {path} -> HTTP {status} {reason}: {message}")


class NotFound(KubeApiError):
    """HTTP 404 from the API."""


class Conflict(KubeApiError):
    """HTTP 409: the object changed since it was read, or already exists."""


class Unauthorized(KubeApiError):
    """HTTP 401: the API server did not accept the run's credentials."""


class Forbidden(KubeApiError):
    """HTTP 403: the credentials were accepted, but that user may not do this."""


class WriteRefused(StagecheckError):
    """A write was about to be sent to a target that does not allow writes in this run."""


class UnknownKind(StagecheckError):
    """The cluster does not serve the kind a feature names."""


class BadArgument(StagecheckError, ValueError):
    """A step argument that cannot be read (a duration, a count)."""


class CannotRunHere(StagecheckError):
    """A check the target cannot perform (a probe pod on nodes that run no containers): the
    scenario is skipped with this reason, never passed."""
