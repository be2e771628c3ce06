"""The output of one ``pods/exec`` call, read one WebSocket message at a time (bounded memory, any size).

The channel protocol (v4/v5.channel.k8s.io, k8s.io/apimachinery/pkg/util/remotecommand): every binary message
starts with a channel byte: 1 stdout, 2 stderr, 3 the command's end as a JSON Status (``status: Success``, or
``Failure`` with ``details.causes[reason=ExitCode].message`` = the exit status), 255 (v5 only) "this channel is
closed". Messages of the API server carry at most 32 KiB of output.

Why not the client's ``WSClient.update()``/``read_channel()``: since kubernetes 37.0.2 ``update()`` reads every
message already waiting on the socket before it returns (kubernetes-client/python PR #2651) and appends each to
one ``bytes`` buffer per channel, so a reader slower than the sender (tar on a fast network, extraction to a slow
disk) holds the whole archive in memory, and copies it again on each append (measured here: 8 MiB at 11 MB/s,
1 GiB never ends). The ``capture_all=False`` the connection is opened with (api.exec_stream) only stops the
second copy, ``ws._all``. Reading a message at a time with a blocking ``recv`` also needs no ``select()``, which
cannot see messages already decrypted inside an ``ssl.SSLSocket`` (issue #2414, PR #2650).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

STDOUT, STDERR, STATUS, CLOSE_CHANNEL = 1, 2, 3, 255
STDERR_KEPT_BYTES = 64 * 1024


class ExecStalled(Exception):
    """No message arrived for the idle timeout."""


class ExecStream:
    """The stdout of an exec as an iterator of byte chunks; then its stderr (the first 64 KiB) and exit status.

    ``ws`` is the client's WSClient (its ``sock`` is websocket-client's ``WebSocket``); ``idle_timeout_s``:
    seconds one message may take before :class:`ExecStalled` is raised."""

    def __init__(self, ws: Any, idle_timeout_s: float) -> None:
        self._ws = ws
        self._idle_timeout_s = idle_timeout_s
        self._stderr: list[bytes] = []
        self._stderr_size = 0
        self.status: dict[str, Any] | None = None
        self.received = 0
        """Bytes of stdout read so far."""

    def stdout(self) -> Iterator[bytes]:
        """Each stdout message's payload as it arrives, until the exec ends (its status, or the connection
        closes). Raises ExecStalled."""
        from websocket import ABNF, WebSocketConnectionClosedException, WebSocketTimeoutException

        sock = self._ws.sock
        sock.settimeout(self._idle_timeout_s)
        while True:
            try:
                opcode, frame = sock.recv_data_frame(True)
            except WebSocketTimeoutException:
                raise ExecStalled(f"no data for {self._idle_timeout_s:.0f} s") from None
            except (WebSocketConnectionClosedException, ConnectionError, OSError):
                return
            if opcode == ABNF.OPCODE_CLOSE:
                return
            if opcode not in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT):
                continue
            data = frame.data if isinstance(frame.data, bytes) else str(frame.data).encode("utf-8")
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == STDOUT and payload:
                self.received += len(payload)
                yield payload
            elif channel == STDERR and self._stderr_size < STDERR_KEPT_BYTES:
                self._stderr.append(payload)
                self._stderr_size += len(payload)
            elif channel == STATUS:
                try:
                    self.status = json.loads(payload.decode("utf-8", "replace") or "{}")
                except ValueError:
                    self.status = {"status": "Failure", "message": payload.decode("utf-8", "replace")}

    def drain(self) -> None:
        """Read what is left (after the consumer of :meth:`stdout` stopped early, e.g. at tar's end blocks)."""
        for _chunk in self.stdout():
            pass

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    @property
    def exit_code(self) -> int | None:
        """The command's exit status: 0 on Success, the ExitCode cause of a Failure; None when the exec ended
        without a status, or failed without running the command (see :attr:`failure`)."""
        if self.status is None:
            return None
        if self.status.get("status") == "Success":
            return 0
        causes = ((self.status.get("details") or {}).get("causes")) or []
        for cause in causes:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message"))
                except (TypeError, ValueError):
                    return None
        return None

    @property
    def failure(self) -> str:
        """The status's message when the command did not run to an exit status."""
        return str((self.status or {}).get("message") or "")

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
