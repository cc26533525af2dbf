"""The profile model: subject -> ABI -> set of syscall names, with provenance.

A subject is a systemd unit name or an executable path. Provenance per (subject, ABI, name):
first_seen (ISO 8601 UTC string), sources (formats or tools that saw it), exes, count.

On disk (schema seccomp-py/profile/v1):
    {"schema": "seccomp-py/profile/v1",
     "meta": {"incomplete": false, "notes": [...]},
     "subjects": {"nginx.service": {
         "syscalls": {"x86_64": ["accept4", ...]},
         "provenance": {"x86_64": {"accept4": {"count": 3, "exes": [...], "first_seen": "...", "sources": [...]}}}}}}
Serialisation is canonical (sorted keys, sorted lists, fixed indent), so a load/dump round-trips byte-identically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from .errors import InputError
from .fileio import atomic_write

SCHEMA = "seccomp-py/profile/v1"


@dataclass
class Observation:
    """One aggregated sighting of a syscall, as parsers hand it to a profile."""

    subject: str
    abi: str
    syscall: str
    count: int = 1
    first_seen: Optional[str] = None
    source: Optional[str] = None
    exe: Optional[str] = None


@dataclass
class Provenance:
    count: int = 0
    first_seen: Optional[str] = None
    sources: Set[str] = field(default_factory=set)
    exes: Set[str] = field(default_factory=set)

    def absorb(self, other: Provenance) -> None:
        self.count += other.count
        if other.first_seen is not None and (self.first_seen is None or other.first_seen < self.first_seen):
            self.first_seen = other.first_seen
        self.sources |= other.sources
        self.exes |= other.exes

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"count": self.count}
        if self.first_seen is not None:
            out["first_seen"] = self.first_seen
        if self.sources:
            out["sources"] = sorted(self.sources)
        if self.exes:
            out["exes"] = sorted(self.exes)
        return out

    def copy(self) -> Provenance:
        return Provenance(self.count, self.first_seen, set(self.sources), set(self.exes))


# subject -> abi -> name -> provenance
Table = Dict[str, Dict[str, Dict[str, Provenance]]]


@dataclass
class ProfileDiff:
    """Per subject and ABI: names only in the new profile (added) and only in the old one (removed)."""

    added: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)
    removed: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed

    def to_json(self) -> Dict[str, Any]:
        return {"added": self.added, "removed": self.removed}


class Profile:
    """Syscall sets per subject and ABI. Operations add or remove names explicitly; nothing drops silently."""

    def __init__(self) -> None:
        self.table: Table = {}
        self.incomplete = False
        self.notes: List[str] = []

    # -- building ---------------------------------------------------------------
    def add(
        self,
        subject: str,
        abi: str,
        syscall: str,
        *,
        count: int = 1,
        first_seen: Optional[str] = None,
        source: Optional[str] = None,
        exe: Optional[str] = None,
    ) -> bool:
        """Record a syscall; return True when the name is new for (subject, ABI)."""
        names = self.table.setdefault(subject, {}).setdefault(abi, {})
        prov = names.get(syscall)
        is_new = prov is None
        if prov is None:
            prov = names[syscall] = Provenance()
        prov.count += count
        if first_seen is not None and (prov.first_seen is None or first_seen < prov.first_seen):
            prov.first_seen = first_seen
        if source:
            prov.sources.add(source)
        if exe:
            prov.exes.add(exe)
        return is_new

    def add_observation(self, obs: Observation) -> bool:
        return self.add(obs.subject, obs.abi, obs.syscall, count=obs.count, first_seen=obs.first_seen,
                        source=obs.source, exe=obs.exe)

    def add_observations(self, observations: Iterable[Observation]) -> int:
        return sum(1 for obs in observations if self.add_observation(obs))

    # -- queries ----------------------------------------------------------------
    def subjects(self) -> List[str]:
        return sorted(self.table)

    def abis(self, subject: str) -> List[str]:
        return sorted(self.table.get(subject, {}))

    def syscalls(self, subject: str, abi: str) -> List[str]:
        return sorted(self.table.get(subject, {}).get(abi, {}))

    def provenance(self, subject: str, abi: str, syscall: str) -> Optional[Provenance]:
        return self.table.get(subject, {}).get(abi, {}).get(syscall)

    def all_abis(self) -> List[str]:
        return sorted({abi for abis in self.table.values() for abi in abis})

    def count_syscalls(self) -> int:
        return sum(len(names) for abis in self.table.values() for names in abis.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return self.to_json() == other.to_json()

    # -- operations -------------------------------------------------------------
    def copy(self) -> Profile:
        out = Profile()
        out.incomplete = self.incomplete
        out.notes = list(self.notes)
        for subject, abis in self.table.items():
            for abi, names in abis.items():
                out.table.setdefault(subject, {})[abi] = {n: p.copy() for n, p in names.items()}
        return out

    def merge(self, other: Profile) -> Profile:
        """Union of both profiles. Provenance is combined (counts add, earliest first_seen wins)."""
        out = self.copy()
        out.incomplete = self.incomplete or other.incomplete
        out.notes = _unique(self.notes + other.notes)
        for subject, abis in other.table.items():
            for abi, names in abis.items():
                target = out.table.setdefault(subject, {}).setdefault(abi, {})
                for name, prov in names.items():
                    target.setdefault(name, Provenance()).absorb(prov)
        return out

    def diff(self, new: Profile) -> ProfileDiff:
        """What changed going from self (old) to new."""
        result = ProfileDiff()
        for subject in sorted(set(self.table) | set(new.table)):
            old_abis = self.table.get(subject, {})
            new_abis = new.table.get(subject, {})
            for abi in sorted(set(old_abis) | set(new_abis)):
                old_names = set(old_abis.get(abi, {}))
                new_names = set(new_abis.get(abi, {}))
                if new_names - old_names:
                    result.added.setdefault(subject, {})[abi] = sorted(new_names - old_names)
                if old_names - new_names:
                    result.removed.setdefault(subject, {})[abi] = sorted(old_names - new_names)
        return result

    def subtract(self, names: Iterable[str], *, subject: Optional[str] = None, abi: Optional[str] = None) -> Profile:
        """Remove names (e.g. calls systemd allows implicitly) from every matching subject/ABI."""
        drop = set(names)
        out = self.copy()
        for subj, abis in out.table.items():
            if subject is not None and subj != subject:
                continue
            for abi_name, table in abis.items():
                if abi is not None and abi_name != abi:
                    continue
                for name in drop & set(table):
                    del table[name]
        return out

    def subtract_profile(self, other: Profile) -> Profile:
        """Remove, per subject and ABI, every name the other profile has."""
        out = self.copy()
        for subject, abis in other.table.items():
            for abi, names in abis.items():
                table = out.table.get(subject, {}).get(abi)
                if table is not None:
                    for name in set(names) & set(table):
                        del table[name]
        return out

    def only(self, subjects: Iterable[str]) -> Profile:
        keep = set(subjects)
        out = self.copy()
        out.table = {s: a for s, a in out.table.items() if s in keep}
        return out

    # -- serialisation ----------------------------------------------------------
    def to_json(self) -> Dict[str, Any]:
        subjects: Dict[str, Any] = {}
        for subject, abis in self.table.items():
            subjects[subject] = {
                "syscalls": {abi: sorted(names) for abi, names in abis.items()},
                "provenance": {
                    abi: {name: prov.to_json() for name, prov in names.items()} for abi, names in abis.items()
                },
            }
        meta: Dict[str, Any] = {"incomplete": self.incomplete}
        if self.notes:
            meta["notes"] = list(self.notes)
        return {"schema": SCHEMA, "meta": meta, "subjects": subjects}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str) -> None:
        atomic_write(path, self.dumps())

    @classmethod
    def from_json(cls, data: Any, path: str = "<profile>") -> Profile:
        if not isinstance(data, dict):
            raise InputError("a profile must be a JSON object", path)
        schema = data.get("schema")
        if schema != SCHEMA:
            raise InputError(f"unsupported profile schema {schema!r} (expected {SCHEMA!r})", path)
        subjects = data.get("subjects")
        if not isinstance(subjects, dict):
            raise InputError("'subjects' must be an object", path)
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise InputError("'meta' must be an object", path)
        profile = cls()
        profile.incomplete = bool(meta.get("incomplete", False))
        notes = meta.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise InputError("'meta.notes' must be a list of strings", path)
        profile.notes = list(notes)
        for subject, body in subjects.items():
            where = f"subjects.{subject}"
            if not isinstance(body, dict) or not isinstance(body.get("syscalls"), dict):
                raise InputError(f"{where}: needs a 'syscalls' object", path)
            provenance = body.get("provenance", {})
            if not isinstance(provenance, dict):
                raise InputError(f"{where}.provenance must be an object", path)
            abis = profile.table.setdefault(subject, {})
            for abi, names in body["syscalls"].items():
                if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                    raise InputError(f"{where}.syscalls.{abi} must be a list of syscall names", path)
                table = abis.setdefault(abi, {})
                prov_abi = provenance.get(abi, {})
                if not isinstance(prov_abi, dict):
                    raise InputError(f"{where}.provenance.{abi} must be an object", path)
                for name in names:
                    where_name = f"{where}.provenance.{abi}.{name}"
                    table[name] = _provenance_from_json(prov_abi.get(name, {}), where_name, path)
                extra = set(prov_abi) - set(names)
                if extra:
                    raise InputError(f"{where}.provenance.{abi} names syscalls not in the list: {sorted(extra)}", path)
        return profile

    @classmethod
    def loads(cls, text: str, path: str = "<profile>") -> Profile:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", path, exc.lineno) from None
        return cls.from_json(data, path)

    @classmethod
    def load(cls, path: str) -> Profile:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise InputError(f"cannot read profile: {exc.strerror}", path) from None
        except UnicodeDecodeError:
            raise InputError("profile is not UTF-8 text", path) from None
        return cls.loads(text, os.fspath(path))


def _provenance_from_json(data: Any, where: str, path: str) -> Provenance:
    if not isinstance(data, dict):
        raise InputError(f"{where} must be an object", path)
    count = data.get("count", 0)
    first_seen = data.get("first_seen")
    sources = data.get("sources", [])
    exes = data.get("exes", [])
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InputError(f"{where}.count must be a non-negative integer", path)
    if first_seen is not None and not isinstance(first_seen, str):
        raise InputError(f"{where}.first_seen must be a string", path)
    for label, value in (("sources", sources), ("exes", exes)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where}.{label} must be a list of strings", path)
    return Provenance(count, first_seen, set(sources), set(exes))


def _unique(items: Iterable[str]) -> List[str]:
    seen: Dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def merge_all(profiles: Iterable[Profile]) -> Profile:
    result = Profile()
    for profile in profiles:
        result = result.merge(profile)
    return result


def subject_abi_pairs(profile: Profile) -> List[Tuple[str, str]]:
    return [(s, a) for s in profile.subjects() for a in profile.abis(s)]


def names_by_abi(profile: Profile, subject: str) -> Mapping[str, List[str]]:
    return {abi: profile.syscalls(subject, abi) for abi in profile.abis(subject)}
