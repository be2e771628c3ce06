"""Profile errors: every problem names the file and the dotted key."""

from __future__ import annotations

from dataclasses import dataclass

from mlrepro.errors import BadInputError


@dataclass(frozen=True)
class ProfileProblem:
    source: str   # file path, "--set", or "<builtin:NAME>"
    key: str      # dotted key ("" for the whole document)
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.message}"


class ProfileError(BadInputError):
    """One or more problems in a profile. ``str()`` is one line per problem."""

    def __init__(self, problems: list[ProfileProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
