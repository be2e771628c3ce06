"""Locate data files (Dockerfile templates, Helm chart, built-in profiles).

In a source checkout / editable install they live at the repository root (``images/``, ``helm/``);
in a wheel they are force-included under ``mlrepro/_data/``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def data_dir(name: str) -> Path:
    """Return the directory of a data folder shipped with mlrepro (``images`` or ``helm``)."""
    installed = PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    source = REPO_ROOT / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"mlrepro data folder {name!r} not found (looked in {installed} and {source})")


def images_dir() -> Path:
    return data_dir("images")


def helm_chart_dir() -> Path:
    return data_dir("helm") / "mlrepro"


def builtin_profiles_dir() -> Path:
    return PACKAGE_DIR / "profiles" / "builtin"


def builtin_overlays_dir() -> Path:
    return PACKAGE_DIR / "profiles" / "overlays"
