"""Resolve a profile: ``extends`` chain → overlays (``-f``) → ``--set``, then validate and hash.

Every problem is reported as (source file, dotted key, message); nothing raises a traceback.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from mlrepro.profiles.errors import ProfileError, ProfileProblem
from mlrepro.profiles.merge import Provenance, deep_merge, dotted_overlay, source_of
from mlrepro.profiles.model import Profile, find_contradictions
from mlrepro.resources import builtin_overlays_dir, builtin_profiles_dir

MAX_EXTENDS_DEPTH = 16
_SET_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\+?$")


@dataclass(frozen=True)
class ProfileRequest:
    """What was asked for on the command line: ``-p``, ``-f`` (in order) and ``--set`` (in order). File paths
    are absolute, so the request resolves the same from any directory."""

    profile: str
    overlays: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """``-p P -f O ... --set K=V ...``: the options that resolve this profile again."""
        out = ["-p", self.profile]
        for o in self.overlays:
            out += ["-f", o]
        for s in self.sets:
            out += ["--set", s]
        return out

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> ProfileRequest | None:
        """The request in an ``mlrepro`` command line, as :meth:`argv` writes it (``-p``/``--profile`` -- the
        last one wins, as on the command line --, ``-f``/``--file``, ``--set``, also as ``--opt=value``; other
        options are skipped). None without ``-p``."""
        found = option_values(argv, {"-p": "p", "--profile": "p", "-f": "f", "--file": "f", "--set": "s"})
        if not found["p"]:
            return None
        return cls(found["p"][-1], tuple(found["f"]), tuple(found["s"]))


def option_values(argv: Sequence[str], names: Mapping[str, str]) -> dict[str, list[str]]:
    """The values of options in a recorded command line, in order: ``names`` maps each spelling (``-p``,
    ``--profile``) to a key; ``--opt value`` and ``--opt=value`` both count. {key: [values]} (every key of
    ``names``; options not in ``names`` are skipped with the value that follows them only when inline)."""
    found: dict[str, list[str]] = {key: [] for key in names.values()}
    args = list(argv)
    i = 0
    while i < len(args):
        key, _, inline = args[i].partition("=") if args[i].startswith("--") else (args[i], "", "")
        if key in names:
            value = inline if inline else (args[i + 1] if i + 1 < len(args) else None)
            if value is not None:
                found[names[key]].append(value)
            i += 1 if inline else 2
            continue
        i += 1
    return found


def _as_requested(ref: str, builtin: bool) -> str:
    return ref if builtin else str(Path(ref).expanduser().resolve())


@dataclass(frozen=True)
class ResolvedProfile:
    profile: Profile
    hash: str                      # sha256 hex of the canonical resolved profile
    sources: tuple[str, ...]       # files applied, base first, then overlays, then "--set"
    provenance: dict[str, str] = field(default_factory=dict, compare=False)
    request: ProfileRequest | None = field(default=None, compare=False)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def to_dict(self) -> dict[str, Any]:
        return self.profile.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved profile as YAML that loads back to the same data (:data:`_Dumper`)."""
        return yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, except that a string holding a character YAML 1.1 reads as a line break (NEL, U+2028,
    U+2029) is double-quoted: written raw in a plain or single-quoted scalar it would be folded on loading."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = '"' if any(c in data for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def builtin_profile_names() -> list[str]:
    return sorted(p.stem for p in builtin_profiles_dir().glob("*.yaml") if not p.stem.startswith("_"))


def _builtin_path(name: str) -> Path:
    return builtin_profiles_dir() / f"{name}.yaml"


def _read_yaml(path: Path, source: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError([ProfileProblem(source, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError([ProfileProblem(source, "", f"cannot read: {exc}")]) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError([ProfileProblem(source, "", f"invalid YAML{where}: {problem}")]) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ProfileError([ProfileProblem(source, "", f"expected a mapping at the top, got {type(doc).__name__}")])
    return doc


def _locate(ref: str, relative_to: Path | None) -> tuple[Path, str]:
    """A profile reference is a built-in name or a file path (relative to the referring file)."""
    if "/" not in ref and not ref.endswith((".yaml", ".yml")):
        path = _builtin_path(ref)
        if path.is_file():
            return path, f"<builtin:{ref}>"
        hint = difflib.get_close_matches(ref, builtin_profile_names(), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (built-ins: {', '.join(builtin_profile_names())})"
        raise LookupError(f"unknown profile '{ref}'{suggestion}")
    path = Path(ref).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    return path, str(path)


def _load_chain(ref: str, relative_to: Path | None, referrer: str, provenance: Provenance,
                stack: tuple[Path, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    try:
        path, source = _locate(ref, relative_to)
    except LookupError as exc:
        raise ProfileError([ProfileProblem(referrer, "extends" if stack else "", str(exc))]) from None
    resolved = path.resolve()
    if resolved in stack:
        cycle = " -> ".join([p.name for p in stack] + [resolved.name])
        raise ProfileError([ProfileProblem(source, "extends", f"cyclic extends: {cycle}")])
    if len(stack) >= MAX_EXTENDS_DEPTH:
        raise ProfileError([ProfileProblem(source, "extends", f"extends chain deeper than {MAX_EXTENDS_DEPTH}")])
    doc = _read_yaml(path, source)
    parent = doc.pop("extends", None)
    if parent is None:
        return _merge(source, {}, doc, provenance), [source]
    if not isinstance(parent, str) or not parent:
        raise ProfileError([ProfileProblem(source, "extends", "expected a profile name or file path")])
    base, sources = _load_chain(parent, path.parent, source, provenance, stack + (resolved,))
    return _merge(source, base, doc, provenance), sources + [source]


def _merge(source: str, base: dict[str, Any], overlay: dict[str, Any], provenance: Provenance) -> dict[str, Any]:
    try:
        return deep_merge(base, overlay, source, provenance)
    except TypeError as exc:
        key, _, message = str(exc).partition(": ")
        raise ProfileError([ProfileProblem(source, key, message)]) from None


def builtin_overlay_names() -> list[str]:
    return sorted(p.stem for p in builtin_overlays_dir().glob("*.yaml"))


def _locate_overlay(ref: str) -> tuple[Path, str]:
    """An overlay is a file path or the name of a built-in overlay (``quick``, ``air-gapped``)."""
    if "/" not in ref and not ref.endswith((".yaml", ".yml")):
        path = builtin_overlays_dir() / f"{ref}.yaml"
        if path.is_file():
            return path, f"<overlay:{ref}>"
        hint = difflib.get_close_matches(ref, builtin_overlay_names(), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (built-ins: {', '.join(builtin_overlay_names())})"
        raise ProfileError([ProfileProblem("-f", "", f"unknown overlay '{ref}'{suggestion}")])
    path = Path(ref).expanduser()
    return path, str(path)


def parse_set(assignment: str) -> tuple[str, Any]:
    """``a.b=value`` → ("a.b", YAML-decoded value). Raises ProfileError on a malformed assignment."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not _SET_KEY.match(key):
        raise ProfileError([ProfileProblem("--set", key or assignment,
                                           "expected dotted.key=value (e.g. benchmark.scenarios=[Offline,Server])")])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


#: an overlay's ``families:`` section: fragments merged after the overlay's own keys, only into profiles whose
#: workload is of that family. ``llm``: the token workloads (``TokenWorkload.token_latencies``: the LLMs), whose
#: quick settings differ (docs/llm.md: the query counts LoadGen's early stopping accepts, max_new_tokens).
WORKLOAD_FAMILIES = ("llm",)
FAMILIES_KEY = "families"


def workload_family(name: object) -> str | None:
    """``llm`` for a token workload, None for others or a workload not installed here."""
    from mlrepro.harness.registry import load_workload_class

    if not isinstance(name, str):
        return None
    try:
        cls = load_workload_class(name)
    except Exception:  # noqa: BLE001 - an unknown workload is reported by validation
        return None
    return "llm" if getattr(cls, "token_latencies", False) else None


def _families(data: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The overlay's ``families`` section (removed from ``data``), checked."""
    section = data.pop(FAMILIES_KEY, None)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ProfileError([ProfileProblem(source, FAMILIES_KEY, "expected a mapping of workload families "
                                                                 f"({', '.join(WORKLOAD_FAMILIES)})")])
    for name, fragment in section.items():
        if name not in WORKLOAD_FAMILIES:
            raise ProfileError([ProfileProblem(source, f"{FAMILIES_KEY}.{name}", "unknown workload family "
                                                                              f"(known: {', '.join(WORKLOAD_FAMILIES)})")])
        if not isinstance(fragment, dict):
            raise ProfileError([ProfileProblem(source, f"{FAMILIES_KEY}.{name}", "expected a mapping")])
    return section


def resolve_profile(ref: str | Path, overlays: Iterable[str | Path] = (), sets: Iterable[str] = ()) -> ResolvedProfile:
    """Resolve a built-in name or a profile file, apply overlays then ``--set`` assignments, validate, hash.

    An overlay's ``families.<family>`` fragment is merged right after the overlay's own keys when the profile's
    workload (as everything else given resolves it) is of that family (:func:`workload_family`)."""
    chain_provenance: Provenance = {}
    base, sources = _load_chain(str(ref), None, "--profile", chain_provenance)
    requested_overlays: list[str] = []
    loaded: list[tuple[str, dict[str, Any], dict[str, dict[str, Any]]]] = []
    for overlay in overlays:
        path, source = _locate_overlay(str(overlay))
        requested_overlays.append(_as_requested(str(overlay), source.startswith("<overlay:")))
        data = _read_yaml(path, source)
        if "extends" in data:
            raise ProfileError([ProfileProblem(source, "extends", "an overlay cannot extend (use it in a profile)")])
        loaded.append((source, data, _families(data, source)))
        sources.append(source)
    set_list = list(sets)
    assignments = [parse_set(a) for a in set_list]

    def apply(family: str | None, provenance: Provenance) -> dict[str, Any]:
        doc = base
        for source, data, families in loaded:
            doc = _merge(source, doc, data, provenance)
            if family is not None and family in families:
                doc = _merge(source, doc, families[family], provenance)
        for key, value in assignments:
            doc = _merge("--set", doc, dotted_overlay(key, value), provenance)
        return doc

    provenance = dict(chain_provenance)
    doc = apply(None, provenance)
    if any(families for _, _, families in loaded):
        family = workload_family((doc.get("benchmark") or {}).get("workload", "reference-digits")
                                 if isinstance(doc.get("benchmark"), dict) else None)
        if family is not None and any(family in families for _, _, families in loaded):
            provenance = dict(chain_provenance)
            doc = apply(family, provenance)
    if set_list:
        sources.append("--set")
    default_source = sources[-1] if sources else str(ref)
    profile = validate_document(doc, provenance, default_source, sources)
    request = ProfileRequest(_as_requested(str(ref), sources[0].startswith("<builtin:")), tuple(requested_overlays),
                             tuple(set_list))
    return ResolvedProfile(profile=profile, hash=profile_hash(profile), sources=tuple(sources),
                           provenance=dict(provenance), request=request)


def validate_document(doc: dict[str, Any], provenance: Provenance, default_source: str,
                      sources: list[str] | None = None) -> Profile:
    sources = sources or [default_source]
    try:
        profile = Profile.model_validate(doc)
    except ValidationError as exc:
        problems = [_problem(err, doc, provenance, default_source) for err in exc.errors()]
        raise ProfileError(_dedupe(problems)) from None
    contradictions = find_contradictions(profile)
    if contradictions:
        raise ProfileError([_blame(keys, message, provenance, sources, default_source)
                            for keys, message in contradictions])
    return profile


def _blame(keys: tuple[str, ...], message: str, provenance: Provenance, sources: list[str],
           default_source: str) -> ProfileProblem:
    """Report a contradiction at the involved key that the latest source set."""
    order = {s: i for i, s in enumerate(sources)}
    best = max(keys, key=lambda k: (order.get(source_of(provenance, k, ""), -1), -keys.index(k)))
    return ProfileProblem(source_of(provenance, best, default_source), best, message)


def _problem(err: dict[str, Any], doc: dict[str, Any], provenance: Provenance, default_source: str) -> ProfileProblem:
    loc = [str(p) for p in err["loc"]]
    # pydantic puts "[key]" / tagged-union details in loc; keep the user's keys only
    key = ".".join(p for p in loc if not p.startswith("function-"))
    etype = err["type"]
    source = source_of(provenance, key, default_source)
    if etype == "extra_forbidden":
        parent_loc, bad = loc[:-1], loc[-1]
        model = _model_at(parent_loc)
        known = list(model.model_fields) if model else []
        hint = difflib.get_close_matches(bad, known, n=1, cutoff=0.6)
        message = "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        return ProfileProblem(source, key, message)
    if etype == "missing":
        return ProfileProblem(source, key, "missing required field")
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if etype == "string_pattern_mismatch":
        value = err.get("input")
        message = f"invalid value {value!r}"
    elif etype in ("literal_error",):
        message = f"invalid value {err.get('input')!r}: {err['msg'].replace('Input should be ', 'expected ')}"
    elif etype.endswith("_type") or etype.endswith("_parsing"):
        message = f"wrong type: {err['msg'].replace('Input should be ', 'expected ')}, got {type(err.get('input')).__name__}"
    return ProfileProblem(source, key, message)


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Profile
    for part in loc:
        field_info = model.model_fields.get(part)
        if field_info is None:
            # list index or dict key inside a container of models
            continue
        annotation = field_info.annotation
        inner = _first_model(annotation)
        if inner is None:
            return None
        model = inner
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _dedupe(problems: list[ProfileProblem]) -> list[ProfileProblem]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for p in problems:
        k = (p.source, p.key, p.message)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


#: fields added after profiles were first hashed, with the default that means what profiles meant before them:
#: left out of the hash at that default, so a recorded profile's hash still matches it re-resolved
_LATER_FIELDS: tuple[tuple[tuple[str, str], object], ...] = (
    (("framework", "source"), "lock"), (("packages", "index_urls"), []), (("packages", "exclude"), []),
    (("benchmark", "options"), {}))
#: whole sections added later: left out of the hash when they hold their defaults (``serve``: no model server)
_LATER_SECTIONS: tuple[str, ...] = ("serve",)


def profile_hash(profile: Profile) -> str:
    """Stable content hash: sha256 over canonical JSON of the resolved profile."""
    doc = profile.model_dump(mode="json")
    for (section, key), default in _LATER_FIELDS:
        if doc.get(section, {}).get(key) == default:
            del doc[section][key]
    defaults = Profile.model_fields
    for section in _LATER_SECTIONS:
        field_info = defaults[section]
        default = field_info.default_factory() if field_info.default_factory else field_info.default  # type: ignore[call-arg]
        if doc.get(section) == default.model_dump(mode="json"):
            del doc[section]
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
