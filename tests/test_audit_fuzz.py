"""Property: whatever lines the audit parsers get, in any format, they either collect them (with warnings
naming file:line) or raise InputError. Nothing else escapes, and what comes out is valid."""

from __future__ import annotations

import glob
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seccomp_py.audit import FORMATS, AuditCollector
from seccomp_py.errors import InputError
from seccomp_py.syscalls import get_abi

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _sample_lines():
    lines = []
    paths = sorted(glob.glob(os.path.join(DATA, "audit", "*", "*")) + glob.glob(os.path.join(DATA, "guest", "*", "*")))
    for path in paths:
        if path.endswith((".json", ".txt", ".log")) and os.path.isfile(path):
            with open(path, "rb") as handle:
                lines.extend(handle.read().split(b"\n")[:400])
    return [line + b"\n" for line in lines if line]


SAMPLE_LINES = _sample_lines()

TOKENS = [
    "audit: ", "type=1326 ", "type=SECCOMP ", "type=1300 ", "type=DAEMON_START ", "msg=", "audit(1795367036.883:",
    "audit(1.2:", "42)", "): ", "auid=4294967295 ", "pid=7 ", "comm=\"x\" ", "comm=736563 ", "exe=\"/bin/x\" ",
    "exe=(null) ", "sig=0 ", "arch=c000003e ", "arch=40000003 ", "arch=c00000b7 ", "arch=zz ", "syscall=257 ",
    "syscall=1073741863 ", "syscall=-1 ", "syscall=99999999999999999999 ", "compat=1 ", "ip=0x1 ",
    "code=0x7ffc0000", "code=0x50001", "code=0x0", "code=zz", "kauditd_printk_skb: 12 callbacks suppressed",
    "audit_lost=5 ", "backlog limit exceeded", "kauditd hold queue overflow", "[  12.345678] ", "5,1,2,-;",
    "Nov 22 16:56:24 host kernel: ", "2026-11-22T17:03:14.500976+00:00 vm kernel: ", "audit[12]: SECCOMP ",
    "{", "}", "\"", "\\", "\\\"", ":", ",", "\"MESSAGE\":\"", "\"MESSAGE\":\"SECCOMP ", "\"_AUDIT_ID\":\"",
    "\"_AUDIT_TYPE\":\"1326\"", "\"_AUDIT_FIELD_CODE\":\"", "\"_AUDIT_FIELD_SYSCALL\":\"",
    "\"_AUDIT_FIELD_ARCH\":\"", "\"_EXE\":\"", "\"_EXE\":[47,255]", "\"_COMM\":\"", "\"_PID\":\"",
    "\"_BOOT_ID\":\"b1\"", "\"_SOURCE_REALTIME_TIMESTAMP\":\"", "\"__REALTIME_TIMESTAMP\":\"-1\"",
    "\"_TRANSPORT\":\"audit\"", "1795367036883000", "0x7ffc0000", "c000003e", "\x1d", "\x1e", "\x00", "\xff",
    "\u00e9", " ", "\t", "\r",
]

token_line = st.lists(st.sampled_from(TOKENS), max_size=14).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass") + b"\n")
random_line = st.one_of(st.binary(max_size=120), st.text(max_size=120).map(
    lambda t: t.encode("utf-8", "surrogatepass")), token_line)


@st.composite
def mutated_line(draw):
    line = bytearray(draw(st.sampled_from(SAMPLE_LINES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "delete", "digits"]))
        pos = draw(st.integers(0, max(0, len(line) - 1)))
        if kind == "cut":
            del line[pos:]
        elif kind == "flip" and line:
            line[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            line[pos:pos] = draw(st.sampled_from(TOKENS)).encode("utf-8", "surrogatepass")
        elif kind == "delete":
            del line[pos:pos + draw(st.integers(1, 40))]
        else:  # change a number, keep the JSON valid-looking
            line[pos:pos] = str(draw(st.integers(-10**20, 10**20))).encode()
    return bytes(line)


any_line = st.one_of(random_line, mutated_line(), st.sampled_from(SAMPLE_LINES))


def check(collector: AuditCollector) -> None:
    for obs in collector.observations():
        abi = get_abi(obs.abi)
        assert abi.has(obs.syscall), obs
        assert obs.count > 0 and obs.subject
    stats = collector.stats
    for value in (stats.records, stats.duplicates, stats.suppressed, stats.lost, stats.serial_gaps,
                  stats.missing_serials, stats.unknown, stats.bad_lines):
        assert value >= 0
    assert sum(stats.actions.values()) == stats.records
    for warning in stats.warnings:
        assert warning.startswith("fuzz") or warning.startswith("... "), warning
    assert isinstance(stats.possible_loss, bool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(any_line, max_size=25), fmt=st.sampled_from(("auto", *FORMATS)),
       by=st.sampled_from(("exe", "comm")), attribute=st.booleans())
def test_feed_lines_only_raises_input_error(lines, fmt, by, attribute):
    collector = AuditCollector(by=by, subject_for=(lambda pid, exe, comm: comm) if attribute else None)
    try:
        collector.feed_lines(lines, path="fuzz", fmt=fmt)
    except InputError as exc:
        assert exc.path == "fuzz"
        return
    check(collector)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(any_line, max_size=25), fmt=st.sampled_from(("auto", *FORMATS)))
def test_records_only_raise_input_error(lines, fmt):
    collector = AuditCollector()
    try:
        records = list(collector.records(lines, fmt=fmt, path="fuzz"))
    except InputError as exc:
        assert exc.path == "fuzz"
        return
    for record in records:
        assert record.path == "fuzz" and record.line >= 1
        if record.syscall is not None:
            assert get_abi(record.abi).has(record.syscall)
    check(collector)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000))
def test_feed_file_only_raises_input_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "input"
    path.write_bytes(data)
    collector = AuditCollector()
    try:
        collector.feed_file(path)
    except InputError as exc:
        assert exc.path == str(path)
        return
    collector.stats  # noqa: B018 - computing the stats must not fail either
