"""The exception hierarchy. Every message names what was asked, what came back and what to do.

Every class says what kind of problem it is (``category``), and the reports classify a red
result by its exception's class alone (``stagecheck.reporting.categories``):

- ``environment``: the target could not be reached, refused us, or could not do the work
  (credentials, permissions, a read-only target, a probe that cannot start);
- ``test``: the specification is wrong (a feature, its arguments, a manifest, a misspelled kind);
- ``product``: the deployment is not in the stated state (a red check is a ``StepFailure``,
  in ``stagecheck.engine.outcome``; these are the same found outside a check);
- ``stagecheck``: a defect of stagecheck itself: a ``StagecheckError`` no subclass says more
  of, and any exception stagecheck did not mean to raise.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Category = Literal["environment", "test", "product", "stagecheck"]


class StagecheckError(Exception):
    """Base of every error stagecheck raises on purpose."""

    category: ClassVar[Category] = "stagecheck"


class EnvironmentProblem(StagecheckError):
    """The environment could not be reached, refused us, or could not do what was asked."""

    category: ClassVar[Category] = "environment"


class SpecificationError(StagecheckError):
    """The specification is wrong: a feature's argument, table or document, or a check that
    does not apply to what the feature names."""

    category: ClassVar[Category] = "test"


class StateError(StagecheckError):
    """The deployment is not in the stated state, found outside a check (a Secret without
    the key its DSPA names, say)."""

    category: ClassVar[Category] = "product"


class ConfigError(EnvironmentProblem):
    """The run's configuration is wrong: unknown target, missing kubeconfig or context."""


class KubeconfigError(ConfigError):
    """A kubeconfig that cannot be used: not YAML, a field of the wrong type, a context that is
    not there, or something stagecheck cannot do (named, never with its value)."""


class TargetUnreachable(EnvironmentProblem):
    """The selected target's API server did not answer."""


class ServerNotTrusted(TargetUnreachable):
    """The API server answered, but its certificate is not one the kubeconfig trusts."""


class CredentialError(EnvironmentProblem):
    """No credential could be had: a token file unreadable, an exec plugin missing or failing."""


class MissingCredential(CredentialError):
    """A credential the feature needs is not set: a variable, a ``.env`` file or its key."""


class KubeApiError(EnvironmentProblem):
    """The Kubernetes API answered with an error status (refused the request)."""

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
    """HTTP 404 from the API: an object the stage needs is not there."""

    category: ClassVar[Category] = "product"


class Invalid(KubeApiError):
    """HTTP 422: the API server rejected what the feature sent (its fields are wrong)."""

    category: ClassVar[Category] = "test"


class Conflict(KubeApiError):
    """HTTP 409: the object changed since it was read, or already exists."""


class Unauthorized(KubeApiError):
    """HTTP 401: the API server did not accept the run's credentials."""


class Forbidden(KubeApiError):
    """HTTP 403: the credentials were accepted, but that user may not do this."""


class WriteRefused(EnvironmentProblem):
    """A write was about to be sent to a target that does not allow writes in this run."""


class InUseByAnotherRun(EnvironmentProblem):
    """An object another live run of stagecheck created: that run's cleanup will delete it, so
    this run leaves it alone (one provisioning run per namespace at a time)."""


class JournalUnwritable(EnvironmentProblem):
    """The run's lease, where each change is recorded before it is made, cannot be written:
    so the change is not made."""


class UnknownKind(StagecheckError):
    """The cluster serves no kind of that name, nor one close to it: the operator that owns
    its CRD is missing."""

    category: ClassVar[Category] = "product"


class MisnamedKind(UnknownKind):
    """The cluster serves no kind of that name, but one close to it, or the same kind in
    another API group: the feature's spelling is wrong."""

    category: ClassVar[Category] = "test"


class BadArgument(SpecificationError, ValueError):
    """A step argument that cannot be read (a duration, a count)."""


class ManifestError(SpecificationError):
    """A manifest set that cannot be applied: its file, its object and what is wrong."""


class EndpointError(EnvironmentProblem):
    """A service the feature needs cannot be located or does not answer."""


class PortForwardError(EnvironmentProblem):
    """The API server or the node refused to forward the port."""


class ProbeError(EnvironmentProblem):
    """The in-cluster probe pod could not be created, started or finished."""


class CleanupIncomplete(EnvironmentProblem):
    """What a scenario changed could not all be undone: each change and why."""


class CannotRunHere(EnvironmentProblem):
    """A check the target cannot perform (a probe pod on nodes that run no containers): the
    scenario is skipped with this reason, never passed."""


class Planned(StagecheckError):
    """Plan mode: what a scenario would change; the scenario is skipped, nothing written."""

    def __init__(self, changes: list[str]) -> None:
        self.changes = changes
        super().__init__("plan only, nothing written; would " + "; ".join(changes))
