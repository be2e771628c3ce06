"""Registry login, push and pull through the Docker SDK, with typed errors.

The engine's push stream is parsed into :class:`PushEvent` records (``status``, ``aux.Digest``,
``errorDetail``); failures are classified from the engine's HTTP status or the registry's error code
(the ``<code>:`` prefix of a Distribution error such as ``unauthorized: authentication required``),
never from free text. Messages name the registry and the user, never the password.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlrepro.image.errors import EngineUnavailable, RegistryAuthError, RegistryError, one_line

if TYPE_CHECKING:  # pragma: no cover
    import docker

# Distribution (registry v2) error codes that mean "who are you / you may not": see
# https://distribution.github.io/distribution/spec/api/#errors
AUTH_ERROR_CODES = frozenset({"unauthorized", "denied"})
DEFAULT_REGISTRY = "docker.io"

# The shapes in which the engine (moby 20.10 .. 28) reports registry failures. Each is parsed into a
# registry error code; nothing else of the text is interpreted.
_REQUEST_PREFIX = re.compile(r'^(?:GET|HEAD|PUT|POST|PATCH|DELETE|Get|Head|Put|Post|Patch|Delete) "[^"]*": ')
_CODE_PREFIX = re.compile(r"^([a-z][a-z_]*): ")
_LOGIN_STATUS = re.compile(r"^login attempt to \S+ failed with status: (\d{3})\b")
_NO_CREDENTIALS = "no basic auth credentials"  # moby's ErrNoBasicAuthCredentials, sent verbatim
_HTTP_CODES = {401: "unauthorized", 403: "denied"}


def registry_error_code(message: str | None) -> str | None:
    """The Distribution error code in an engine error message (``unauthorized``, ``denied``,
    ``manifest_unknown``...), or None when the message carries none."""
    if not message:
        return None
    text = _REQUEST_PREFIX.sub("", message.strip(), count=1)
    if text == _NO_CREDENTIALS:
        return "unauthorized"
    login = _LOGIN_STATUS.match(text)
    if login:
        return _HTTP_CODES.get(int(login.group(1)), f"http_{login.group(1)}")
    code = _CODE_PREFIX.match(text)
    return code.group(1) if code else None


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry. ``repr`` hides the password."""

    registry: str
    username: str
    password: str = field(repr=False)

    def auth_config(self) -> dict[str, str]:
        """The ``auth_config`` argument of the SDK's push/pull."""
        return {"username": self.username, "password": self.password, "serveraddress": self.registry}


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: ``[registry/]repository[:tag][@digest]``."""

    registry: str | None
    repository: str
    """Including the registry part, as the engine expects it (``127.0.0.1:5001/team/img``)."""
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        name, _, digest = ref.partition("@")
        head, slash, last = name.rpartition("/")
        tag = None
        if ":" in last:
            last, tag = last.split(":", 1)
        repository = f"{head}{slash}{last}"
        first = repository.split("/", 1)[0]
        has_registry = "/" in repository and ("." in first or ":" in first or first == "localhost")
        if not last or (digest and not digest.startswith("sha256:")):
            raise RegistryError(f"not an image reference: {ref!r}")
        return cls(first if has_registry else None, repository, tag, digest or None)

    def __str__(self) -> str:
        return (
            self.repository
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


LAYER_STATES = ("Preparing", "Waiting", "Pushing", "Pushed", "Layer already exists", "Mounted from")
"""The per-layer ``status`` values of the engine's push stream (moby ``distribution/push_v2.go``);
``Mounted from <repository>`` carries the source repository after the words."""


@dataclass(frozen=True)
class PushEvent:
    """One JSON message of the engine's push stream.

    Per layer (``id`` = the first 12 hex digits of the layer's digest): ``status`` one of :data:`LAYER_STATES`,
    with ``current``/``total`` bytes while Pushing. Without ``id``: a note (``The push refers to repository
    [...]``, ``<tag>: digest: ... size: ...``); the manifest digest comes in ``digest``.
    """

    status: str | None = None
    id: str | None = None
    progress: str | None = None
    digest: str | None = None
    tag: str | None = None
    size: int | None = None
    error: str | None = None
    current: int | None = None
    """Bytes of the layer pushed so far (``progressDetail.current``)."""
    total: int | None = None
    """Bytes of the layer (``progressDetail.total``), when the engine knows it."""

    @property
    def layer_state(self) -> str | None:
        """The layer state (:data:`LAYER_STATES`) when this message is about one layer, else None."""
        if not self.id or not self.status:
            return None
        return next((s for s in LAYER_STATES if self.status.startswith(s)), None)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PushEvent:
        raw_aux, raw_detail = obj.get("aux"), obj.get("errorDetail")
        aux: Mapping[str, Any] = raw_aux if isinstance(raw_aux, Mapping) else {}
        detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else {}
        error = detail.get("message") or obj.get("error")
        raw_progress = obj.get("progressDetail")
        ticks: Mapping[str, Any] = raw_progress if isinstance(raw_progress, Mapping) else {}
        size = aux.get("Size")
        return cls(
            status=obj.get("status"),
            id=obj.get("id"),
            progress=obj.get("progress"),
            digest=aux.get("Digest"),
            tag=aux.get("Tag"),
            size=int(size) if isinstance(size, (int, float)) else None,
            error=str(error) if error else None,
            current=_int(ticks.get("current")),
            total=_int(ticks.get("total")),
        )

    @property
    def error_code(self) -> str | None:
        """The registry error code (``unauthorized``, ``denied``...) if the error has one."""
        return registry_error_code(self.error)


def login(client: docker.DockerClient, registry: str, username: str, password: str) -> RegistryAuth:
    """Check the credentials against ``registry`` through the engine; return them for push/pull.

    Raises :class:`RegistryAuthError` if the registry rejects them, :class:`RegistryError` otherwise.
    """
    import docker as _docker

    try:
        client.login(username=username, password=password, registry=registry, reauth=True)
    except _docker.errors.APIError as exc:
        if exc.status_code == 401 or _is_auth_explanation(exc):
            raise RegistryAuthError(
                f"registry {registry} rejected the credentials of user {username!r}"
            ) from None
        raise RegistryError(
            f"login to {registry} as {username!r} failed: {_scrub(exc.explanation or exc, password)}"
        ) from None
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"login to {registry}: engine error: {_scrub(exc, password)}") from None
    return RegistryAuth(registry, username, password)


def push(client: docker.DockerClient, ref: str, auth: RegistryAuth | None = None, *,
         on_event: Callable[[PushEvent], None] | None = None) -> str:
    """Push the local image ``ref`` (``registry/repo:tag``); return the manifest digest (``sha256:...``).

    ``on_event`` gets each :class:`PushEvent` of the stream as the engine sends it (progress while it goes).
    Raises RegistryAuthError, RegistryError, EngineUnavailable."""
    import docker as _docker

    parsed = ImageRef.parse(ref)
    if parsed.digest:
        raise RegistryError(f"cannot push a digest reference: {ref}")
    tag = parsed.tag or "latest"
    try:
        stream = client.api.push(
            parsed.repository,
            tag=tag,
            stream=True,
            decode=True,
            auth_config=auth.auth_config() if auth else None,
        )
        events = []
        for obj in stream:
            event = PushEvent.from_json(obj)
            events.append(event)
            if on_event is not None:
                on_event(event)
    except _docker.errors.APIError as exc:
        if exc.status_code == 401 or _is_auth_explanation(exc):
            raise RegistryAuthError(_auth_message("push", parsed, auth)) from None
        raise RegistryError(
            f"push of {parsed.repository}:{tag} failed: {_scrub(exc.explanation or exc, auth)}"
        ) from None
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(
            f"push of {parsed.repository}:{tag}: engine error: {_scrub(exc, auth)}"
        ) from None
    return digest_from_events(events, f"{parsed.repository}:{tag}", auth)


def digest_from_events(events: Iterable[PushEvent], what: str, auth: RegistryAuth | None = None) -> str:
    """The digest reported by a push stream, or the typed error it reported."""
    digest = None
    for event in events:
        if event.error:
            if event.error_code in AUTH_ERROR_CODES:
                raise RegistryAuthError(_auth_message("push", ImageRef.parse(what), auth))
            raise RegistryError(f"push of {what} failed: {_scrub(event.error, auth)}")
        if event.digest:
            digest = event.digest
    if not digest:
        raise RegistryError(f"push of {what} ended without reporting a digest")
    return digest


def pull(
    client: docker.DockerClient, ref: str, auth: RegistryAuth | None = None
) -> docker.models.images.Image:
    """Pull ``ref`` (by tag or ``@sha256:`` digest); return the local image."""
    import docker as _docker

    parsed = ImageRef.parse(ref)
    try:
        if parsed.digest:
            return client.images.pull(
                f"{parsed.repository}@{parsed.digest}", auth_config=auth.auth_config() if auth else None
            )
        return client.images.pull(
            parsed.repository, tag=parsed.tag or "latest", auth_config=auth.auth_config() if auth else None
        )
    except _docker.errors.APIError as exc:
        if exc.status_code == 401 or _is_auth_explanation(exc):
            raise RegistryAuthError(_auth_message("pull", parsed, auth)) from None
        raise RegistryError(f"pull of {parsed} failed: {_scrub(exc.explanation or exc, auth)}") from None
    except _docker.errors.DockerException as exc:
        raise EngineUnavailable(f"pull of {parsed}: engine error: {_scrub(exc, auth)}") from None


# --- helpers ------------------------------------------------------------------------------------


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _auth_message(action: str, ref: ImageRef, auth: RegistryAuth | None) -> str:
    registry = ref.registry or DEFAULT_REGISTRY
    who = f"user {auth.username!r}" if auth else "no credentials"
    return (
        f"registry {registry} refused the {action} of {ref.repository} ({who}): log in with valid credentials"
    )


def _is_auth_explanation(exc: Exception) -> bool:
    """Engines before 23.0 answer auth failures with HTTP 500 and the registry's error in the explanation."""
    return registry_error_code(str(getattr(exc, "explanation", "") or "")) in AUTH_ERROR_CODES


def _scrub(text: object, secret: RegistryAuth | str | None) -> str:
    line = one_line(text)
    password = secret.password if isinstance(secret, RegistryAuth) else secret
    if password:
        line = line.replace(password, "***")
    return line
