"""Profile model: merge/diff/subtract semantics, canonical JSON, atomic writes, schema errors."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seccomp_py.errors import InputError
from seccomp_py.profile import SCHEMA, Observation, Profile, merge_all


def _profile(entries):
    profile = Profile()
    for subject, abi, name in entries:
        profile.add(subject, abi, name, source="test")
    return profile


def test_add_tracks_provenance():
    profile = Profile()
    assert profile.add("nginx.service", "x86_64", "openat", first_seen="2026-01-02T00:00:00Z",
                       source="journal-json", exe="/usr/sbin/nginx", count=3)
    assert not profile.add("nginx.service", "x86_64", "openat", first_seen="2026-01-01T00:00:00Z",
                           source="kmsg", exe="/bin/sh")
    prov = profile.provenance("nginx.service", "x86_64", "openat")
    assert prov.count == 4
    assert prov.first_seen == "2026-01-01T00:00:00Z"
    assert prov.sources == {"journal-json", "kmsg"}
    assert prov.exes == {"/usr/sbin/nginx", "/bin/sh"}


def test_add_observation_reports_new_names():
    profile = Profile()
    obs = [Observation("a", "aarch64", "close"), Observation("a", "aarch64", "close"),
           Observation("a", "aarch64", "openat")]
    assert profile.add_observations(obs) == 2
    assert profile.syscalls("a", "aarch64") == ["close", "openat"]


def test_merge_is_a_union_that_keeps_everything():
    one = _profile([("a", "x86_64", "read"), ("a", "x86_64", "write")])
    two = _profile([("a", "x86_64", "write"), ("a", "x86", "read"), ("b", "aarch64", "close")])
    two.incomplete = True
    two.notes.append("lost 3 records")
    merged = one.merge(two)
    assert merged.syscalls("a", "x86_64") == ["read", "write"]
    assert merged.syscalls("a", "x86") == ["read"]
    assert merged.syscalls("b", "aarch64") == ["close"]
    assert merged.provenance("a", "x86_64", "write").count == 2
    assert merged.incomplete and merged.notes == ["lost 3 records"]
    # inputs are untouched
    assert one.syscalls("a", "x86") == [] and not one.incomplete


def test_diff_reports_added_and_removed():
    old = _profile([("a", "x86_64", "read"), ("a", "x86_64", "open"), ("gone", "x86_64", "close")])
    new = _profile([("a", "x86_64", "read"), ("a", "x86_64", "openat"), ("b", "x86_64", "close")])
    result = old.diff(new)
    assert result.added == {"a": {"x86_64": ["openat"]}, "b": {"x86_64": ["close"]}}
    assert result.removed == {"a": {"x86_64": ["open"]}, "gone": {"x86_64": ["close"]}}
    assert new.diff(new).empty


def test_subtract_removes_only_named_calls_in_scope():
    profile = _profile([("a", "x86_64", "execve"), ("a", "x86_64", "read"), ("a", "x86", "execve"),
                        ("b", "x86_64", "execve")])
    out = profile.subtract(["execve", "exit_group"], subject="a", abi="x86_64")
    assert out.syscalls("a", "x86_64") == ["read"]
    assert out.syscalls("a", "x86") == ["execve"]
    assert out.syscalls("b", "x86_64") == ["execve"]
    other = _profile([("a", "x86_64", "read")])
    assert profile.subtract_profile(other).syscalls("a", "x86_64") == ["execve"]


def test_json_has_schema_and_sorted_names(tmp_path):
    profile = _profile([("nginx.service", "x86_64", "write"), ("nginx.service", "x86_64", "accept4")])
    path = tmp_path / "p.json"
    profile.save(str(path))
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA
    assert data["subjects"]["nginx.service"]["syscalls"] == {"x86_64": ["accept4", "write"]}
    assert Profile.load(str(path)) == profile


def test_round_trip_is_byte_identical(tmp_path):
    profile = _profile([("/usr/bin/ünïcode", "aarch64", "openat"), ("b.service", "x86_64", "read")])
    profile.add("b.service", "x86_64", "read", first_seen="2026-11-22T16:00:00.123Z", exe="/bin/b")
    profile.notes.append("note")
    text = profile.dumps()
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    again = Profile.load(str(path))
    assert again.dumps() == text
    again.save(str(tmp_path / "q.json"))
    assert (tmp_path / "q.json").read_bytes() == path.read_bytes()


names = st.sampled_from(["read", "write", "openat", "close", "mmap", "futex", "clone3"])
entries = st.lists(st.tuples(st.sampled_from(["a.service", "/bin/x", "b"]),
                             st.sampled_from(["x86_64", "aarch64", "x86"]), names), max_size=30)


@settings(max_examples=200, deadline=None)
@given(entries, entries)
def test_merge_properties(left, right):
    one, two = _profile(left), _profile(right)
    merged = one.merge(two)
    for subject, abi, name in left + right:
        assert name in merged.syscalls(subject, abi)
    assert merged.to_json()["subjects"] == two.merge(one).to_json()["subjects"]
    assert one.diff(merged).removed == {}
    assert Profile.loads(merged.dumps()).dumps() == merged.dumps()
    assert merge_all([one, two]) == merged


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"schema": "other", "subjects": {}}', "unsupported profile schema"),
        ('{"schema": "%s", "subjects": []}' % SCHEMA, "'subjects' must be an object"),
        ('{"schema": "%s", "subjects": {"a": {"syscalls": {"x86_64": "read"}}}}' % SCHEMA,
         "must be a list of syscall names"),
        ('{"schema": "%s", "subjects": {"a": {"syscalls": {"x86_64": ["read"]}, '
         '"provenance": {"x86_64": {"read": {"count": -1}}}}}}' % SCHEMA, "non-negative integer"),
        ('{"schema": "%s", "subjects": {"a": {"syscalls": {"x86_64": ["read"]}, '
         '"provenance": {"x86_64": {"write": {}}}}}}' % SCHEMA, "not in the list"),
    ],
)
def test_bad_profiles_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        Profile.load(str(path))
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_failed_save_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    _profile([("a", "x86_64", "read")]).save(str(path))
    before = path.read_bytes()

    def boom(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        _profile([("a", "x86_64", "write")]).save(str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
