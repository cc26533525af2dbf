"""systemd unit name validation, following systemd's own rules (unit_name_is_valid in src/basic/unit-name.c).

A unit name is ``prefix[@instance].type``: at most 255 characters, made of ASCII letters, digits and
``:-_.\\`` (plus ``@`` after the prefix), with a known unit type as suffix. Names that pass cannot
carry a newline, a space or a ``/`` into a unit file or a drop-in path.

    validate_unit_name("nginx.service")            -> "nginx.service"
    validate_unit_name("getty@tty1.service")       -> "getty@tty1.service"
    validate_unit_name("bad\\nname.service")        -> raises InputError
    validate_unit_name("a.mount", types=EXEC_UNIT_TYPES)  # only types that run processes
"""

from __future__ import annotations

import string
from typing import Iterable, Optional

from .errors import InputError

UNIT_NAME_MAX = 255
_VALID_CHARS = frozenset(string.ascii_letters + string.digits + ":-_.\\")
_VALID_CHARS_WITH_AT = _VALID_CHARS | {"@"}

UNIT_TYPES = (
    "service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope",
)
# Types whose units execute processes, so SystemCallFilter= applies to them (systemd.exec(5)).
EXEC_UNIT_TYPES = ("service", "socket", "mount", "swap")


def unit_name_problem(name: str, types: Iterable[str] = UNIT_TYPES) -> Optional[str]:
    """Why name is not a valid unit name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "a unit name must be a non-empty string"
    if len(name) > UNIT_NAME_MAX:
        return f"a unit name is at most {UNIT_NAME_MAX} characters (this one has {len(name)})"
    dot = name.rfind(".")
    if dot <= 0:
        return "a unit name needs a prefix and a type suffix such as '.service'"
    suffix = name[dot + 1:]
    allowed = tuple(types)
    if suffix not in allowed:
        return f"unit type '.{_printable(suffix)}' is not one of: {', '.join('.' + t for t in allowed)}"
    body = name[:dot]
    for char in body:
        if char not in _VALID_CHARS_WITH_AT:
            return f"character {char!r} is not allowed in a unit name"
    if body.startswith("@"):
        return "a unit name needs a prefix before '@'"
    return None


def validate_unit_name(name: str, types: Iterable[str] = UNIT_TYPES, *, path: Optional[str] = None) -> str:
    """Return name unchanged when it is a valid systemd unit name, else raise InputError."""
    problem = unit_name_problem(name, types)
    if problem is not None:
        raise InputError(f"invalid systemd unit name {_printable(str(name))!r}: {problem}", path)
    return name


def is_template(name: str) -> bool:
    """foo@.service: a template, not a runnable unit."""
    at = name.find("@")
    return at > 0 and at + 1 == name.rfind(".")


def _printable(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")
