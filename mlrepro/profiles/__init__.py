"""Profiles: the YAML description of a hardware/software stack, resolved, validated and hashed."""

from mlrepro.profiles.errors import ProfileError, ProfileProblem
from mlrepro.profiles.loader import ResolvedProfile, builtin_profile_names, resolve_profile
from mlrepro.profiles.model import Profile

__all__ = ["Profile", "ProfileError", "ProfileProblem", "ResolvedProfile", "builtin_profile_names",
           "resolve_profile"]
