"""The identity of a state directory, carried as a label by the engine objects its runs create.

Several state directories (users, sessions, CI jobs with their own ``$MLREPRO_STATE_DIR``) may share one Docker
engine. Every results volume and container a run of this state directory creates is labelled
``mlrepro.io/state-id=<id>`` (and, for people reading ``docker volume inspect``, ``mlrepro.io/state-dir=<path>``);
``mlrepro prune`` removes only objects whose state id is its own.

The id is **random, made once and stored in the state directory** (``<state dir>/state-id``), not a hash of the
directory's path, because a path is not an identity: two containers or CI jobs that each mount their own state
directory at the same path (``/root/.local/state/mlrepro``) on one shared engine would hash alike and prune each
other's results, and a state directory that is moved or reached through another path (a symlink, a bind mount)
would stop recognising its own objects. A stored random id has neither problem; a copied state directory keeps
the id, which is right (it holds the same run records).

Public API::

    STATE_ID_LABEL, STATE_DIR_LABEL
    state_id(state_dir) -> str          (creates the id on first use; StateError when it cannot be read or made)
    state_labels(state_dir) -> dict[str, str]
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from mlrepro.state.errors import StateError

STATE_ID_LABEL = "mlrepro.io/state-id"
STATE_DIR_LABEL = "mlrepro.io/state-dir"
STATE_ID_FILE = "state-id"
_ID_HEX = 16          # 64 random bits: collisions between state directories sharing an engine are not a concern


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: cannot read the state directory's id ({exc})") from None
    if not text or not all(c in "0123456789abcdef" for c in text):
        raise StateError(f"{path}: not a state id (expected hex digits); remove the file to make a new one")
    return text


def state_id(state_dir: Path) -> str:
    """The id of ``state_dir`` (hex digits), made on first use. Concurrent first uses agree: the id is written to
    a temporary file and linked into place, so exactly one is kept and every caller reads that one. Raises
    StateError naming the file when it cannot be read or made."""
    path = Path(state_dir).expanduser() / STATE_ID_FILE
    existing = _read(path)
    if existing is not None:
        return existing
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-id.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(_ID_HEX // 2) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass                      # another process made it first: its id is the one
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise StateError(f"{path}: cannot make the state directory's id ({exc})") from None
    made = _read(path)
    assert made is not None
    return made


def state_labels(state_dir: Path) -> dict[str, str]:
    """The labels an engine object made for a run of ``state_dir`` carries: its id, and its path for people."""
    return {STATE_ID_LABEL: state_id(state_dir), STATE_DIR_LABEL: str(Path(state_dir).expanduser().resolve())}
