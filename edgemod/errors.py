"""Errors that tell the user how to fix the problem."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgemodError(Exception):
    """A user-facing error: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  fix: {hint}" if hint else message)


class MissingDependencyError(EdgemodError):
    """An optional package is needed for this feature."""

    def __init__(self, package: str, feature: str, extra: str | None = None):
        install = f"pip install 'edgemod[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed", install)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_choice(kind: str, name: str, known: Iterable[str]) -> EdgemodError:
    """Error for a name that is not among the registered ones."""
    known = sorted(known)
    return EdgemodError(
        f"unknown {kind} '{name}'{did_you_mean(name, known)}",
        f"use one of: {', '.join(known)}",
    )


def validation_lines(error, fields: Iterable[str], noun: str = "key") -> str:
    """A pydantic ValidationError as indented lines: unknown names get a did-you-mean."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  unknown {noun} '{where}'{did_you_mean(where, fields)}")
        else:
            lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)
