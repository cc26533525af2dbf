"""The journal fast path (AuditCollector.feed_*) against the exact path (records(): json.loads per line).

Both must give the same observations (subject, ABI, syscall, count, first seen, exe) and the same counts
(records, duplicates, bad lines, unknown, serial gaps, actions), on the real samples and on mutated lines.
"""

from __future__ import annotations

import glob
import json
import os
import random

import pytest

from seccomp_py import audit
from seccomp_py.audit import AuditCollector
from seccomp_py.errors import InputError

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
JOURNALS = sorted(glob.glob(os.path.join(DATA, "guest", "*", "journal-*.json"))
                  + glob.glob(os.path.join(DATA, "audit", "host-*", "journal-*.json")))


def sample(path: str):
    with open(path, "rb") as handle:
        return handle.read().splitlines(keepends=True)


def outcome(collector: AuditCollector):
    obs = sorted((o.subject, o.abi, o.syscall, o.count, o.first_seen, o.source, o.exe or "")
                 for o in collector.observations())
    s = collector.stats
    return obs, {"records": s.records, "duplicates": s.duplicates, "bad_lines": s.bad_lines, "unknown": s.unknown,
                 "unattributed": s.unattributed, "serial_gaps": s.serial_gaps, "missing": s.missing_serials,
                 "actions": dict(s.actions), "suppressed": s.suppressed, "audit_transport": s.audit_transport,
                 "gaps_checked": s.gaps_checked, "other": s.other_records}


def fast(lines, **kwargs):
    collector = AuditCollector(**kwargs)
    collector.feed_lines(lines, path="in.json", fmt="journal-json")
    return collector


def exact(lines, **kwargs):
    collector = AuditCollector(**kwargs)
    list(collector.records(lines, "journal-json", "in.json"))
    return collector


def same(lines, **kwargs):
    a, b = fast(lines, **kwargs), exact(lines, **kwargs)
    assert outcome(a) == outcome(b)
    return a


def reorder(line: bytes, rng: random.Random) -> bytes:
    prefix = b"\x1e" if line.startswith(b"\x1e") else b""  # json-seq
    items = list(json.loads(line[len(prefix):]).items())
    rng.shuffle(items)
    return prefix + json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def seccomp_template() -> dict:
    for line in sample(os.path.join(DATA, "audit", "host-x86_64", "journal-seccomp.json")):
        obj = json.loads(line)
        if obj.get("MESSAGE", "").startswith("SECCOMP ") and "_AUDIT_FIELD_CODE" in obj:
            return obj
    raise AssertionError("no SECCOMP line in the sample")


def encode(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def test_samples_are_there():
    assert len(JOURNALS) >= 10, JOURNALS


@pytest.mark.parametrize("path", JOURNALS, ids=lambda p: os.path.relpath(p, DATA))
def test_fast_path_equals_json_loads_on_real_samples(path):
    lines = sample(path)
    collector = same(lines)
    assert collector.stats.records > 0
    # and with every object's fields in another order (journalctl's order is a hash order)
    rng = random.Random(path)
    same([reorder(line, rng) if line.strip() else line for line in lines])


@pytest.mark.parametrize("path", JOURNALS, ids=lambda p: os.path.relpath(p, DATA))
def test_fast_path_equals_json_loads_with_attribution(path):
    lines = sample(path)
    same(lines, subject_for=lambda pid, exe, comm: None if pid is None else f"{comm}-{pid % 3}")
    same(lines, by="comm")


def test_real_samples_repeated_with_kernel_copies_before_and_after():
    """The bench's shape: one boot, fresh serials, kernel copies after (and here also before) their twin."""
    rng = random.Random(7)
    audit_lines, kernel_lines = [], []
    for path in JOURNALS:
        for line in sample(path):
            line = line.lstrip(b"\x1e")
            if b'"MESSAGE":"SECCOMP ' in line and b'"_AUDIT_FIELD_CODE"' in line:
                audit_lines.append(json.loads(line))
            elif b'"MESSAGE":"audit: type=1326 audit(' in line:
                kernel_lines.append(json.loads(line))
    assert audit_lines and kernel_lines
    out, serial = [], 5000
    for i in range(3000):
        ms = 1795368000000 + 7 * i  # in time order, as a journal export is (first_seen is the first read)
        stamps = {"_SOURCE_REALTIME_TIMESTAMP": str(ms * 1000), "__REALTIME_TIMESTAMP": str(ms * 1000 + 321)}
        obj = dict(audit_lines[i % len(audit_lines)], _AUDIT_ID=str(serial), _BOOT_ID="0" * 32, **stamps)
        copy = None
        if i % 5 == 0:
            k = dict(kernel_lines[i % len(kernel_lines)], _BOOT_ID="0" * 32, __REALTIME_TIMESTAMP=str(ms * 1000 + 99))
            rest = k["MESSAGE"].split("):", 1)[1]
            k["MESSAGE"] = f"audit: type=1326 audit({ms // 1000}.{ms % 1000:03d}:{serial}):{rest}"
            copy = encode(k)
        line = encode(obj)
        if copy and rng.random() < 0.5:
            out += [copy, line]
        elif copy:
            out += [line, copy]
        else:
            out.append(line)
        serial += 1 if i % 97 else 3  # a gap now and then
    collector = same(out)
    assert collector.stats.duplicates == 600 and collector.stats.records == 3000
    assert collector.stats.serial_gaps == len(range(0, 3000, 97))


def test_escaped_and_encoded_exe_and_comm():
    base = seccomp_template()
    pid = base["_PID"]
    lines = []
    cases = [
        ('/opt/my "app"/run', "a\"b"),  # quotes: the kernel hex-encodes, journald unescapes
        ("/opt/\u00e9t\u00e9/run", "\u00e9t\u00e9"),  # non-ASCII
        ("/opt/with space/run", "with space"),
        ("/opt/back\\slash/run", "back\\slash"),
    ]
    for n, (exe, comm) in enumerate(cases):
        obj = dict(base, _AUDIT_ID=str(9000 + n), _EXE=exe, _COMM=comm)
        obj["MESSAGE"] = (obj["MESSAGE"]
                          .replace(f'comm="{base["_COMM"]}"', "comm=" + comm.encode().hex().upper())
                          .replace(f'exe="{base["_EXE"]}"', "exe=" + exe.encode().hex().upper()))
        assert obj["MESSAGE"] != base["MESSAGE"]
        lines.append(encode(obj))
        # the same once more with \u escapes (ensure_ascii) instead of raw UTF-8
        obj = dict(obj, _AUDIT_ID=str(9100 + n))
        lines.append(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    collector = same(lines)
    subjects = {o.subject for o in collector.observations()}
    assert subjects == {exe for exe, _ in cases}, subjects
    assert pid


def test_message_only_lines_and_field_only_lines():
    base = seccomp_template()
    message_only = {k: v for k, v in base.items() if not k.startswith("_AUDIT_FIELD_") and k not in ("_EXE", "_COMM")}
    fields_only = {k: v for k, v in base.items() if k != "MESSAGE"}
    lines = [encode(dict(message_only, _AUDIT_ID="100")), encode(dict(fields_only, _AUDIT_ID="101")),
             encode(dict(message_only, _AUDIT_ID="102")), encode(dict(base, _AUDIT_ID="102")),
             encode(dict(fields_only, _AUDIT_ID="100"))]  # a duplicate whose key is new to its aggregate
    collector = same(lines)
    assert collector.stats.records == 3 and collector.stats.duplicates == 2
    raw = fast(lines)._raw["journal-json"]  # before resolving, which empties it
    assert all(entry[0] for entry in [*raw.message.values(), *raw.fields.values()])  # no entry left at 0


def test_look_alikes_outside_message_take_the_exact_path():
    base = seccomp_template()
    # MESSAGE without a code=, and a later field that has one: the fast path must not slice across fields
    cut = dict(base, _AUDIT_ID="200", MESSAGE=base["MESSAGE"].rsplit(" code=", 1)[0])
    cut["ZZ_NOTE"] = " code=0x7ffc0000"
    # the needles inside a value are escaped, so they do not match there
    decoy = dict(base, _AUDIT_ID="201", SYSLOG_RAW='"MESSAGE":"SECCOMP auid=0 comm="x" code=0x0"')
    # a code longer than the kernel's 10 characters
    long_code = dict(base, _AUDIT_ID="202", MESSAGE=base["MESSAGE"] + "0000")
    lines = [encode(cut), encode(decoy), encode(long_code)]
    for order in (lines, lines[::-1]):
        same(order)


@pytest.mark.parametrize("mutate", [
    lambda b: b[:-2] + b"\n",  # the closing brace cut off
    lambda b: b[: len(b) // 2] + b"\n",  # cut in the middle
    lambda b: b[:-1],  # no newline at the end
    lambda b: b[:-1] + b"\r\n",  # CRLF
    lambda b: b[:-1] + b"}\n",  # a stray brace
    lambda b: b.replace(b'"_AUDIT_ID":"', b'"_AUDIT_ID":["', 1).replace(b'"300"', b'"300"]', 1),  # a list
    lambda b: b.replace(b'"_AUDIT_ID":"300"', b'"_AUDIT_ID":"3_00"'),
    lambda b: b.replace(b" syscall=", b" syscall=x"),
    lambda b: b.replace(b"arch=", b"arch=zz"),
    lambda b: b.replace(b"\\\"", b"\\u0022", 1),  # the same text, escaped another way
    lambda b: b.replace(b"code=0x", b"code=\\u0030x"),
    lambda b: b"\x1e" + b,  # json-seq
    lambda b: b"x" + b,  # not an object
    lambda b: b"\x00" * 20 + b"\n",
], ids=["no-brace", "half", "no-newline", "crlf", "stray-brace", "id-list", "id-underscore",
        "bad-syscall", "bad-arch", "u-escape", "u-escape-code", "json-seq", "not-object",
        "nul"])
def test_damaged_lines_give_the_same_result(mutate):
    base = seccomp_template()
    good = [encode(dict(base, _AUDIT_ID=str(n))) for n in (298, 299)]
    bad = mutate(encode(dict(base, _AUDIT_ID="300")))
    tail = [encode(dict(base, _AUDIT_ID=str(n))) for n in (301, 302)]
    lines = [*good, bad, *tail] if not bad.endswith(b"}") or bad.endswith(b"\n") else [*good, *tail, bad]
    a = same(lines)
    b = exact(lines)
    # naming the same file and line (a line that is no JSON object at all is not parsed by the fast path)
    assert [w.split(": ", 1)[0] for w in a.stats.warnings] == [w.split(": ", 1)[0] for w in b.stats.warnings]


def test_truncated_only_input_names_file_and_line(tmp_path):
    line = encode(seccomp_template())
    path = tmp_path / "cut.json"
    path.write_bytes(line[: len(line) // 2] + b"\n")
    with pytest.raises(InputError) as err:
        AuditCollector().feed_file(path, "journal-json")
    assert str(path) in str(err.value) and ":1" in str(err.value)


def test_raw_keys_are_bounded(monkeypatch):
    """Every record from another process and call site: the undecoded keys are folded at the limit."""
    monkeypatch.setattr(audit, "_RAW_LIMIT", 50)
    base = seccomp_template()
    pid = base["_PID"]
    lines = []
    for i in range(400):
        obj = dict(base, _AUDIT_ID=str(1000 + i), _PID=str(20000 + i))
        obj["MESSAGE"] = obj["MESSAGE"].replace(f" pid={pid} ", f" pid={20000 + i} ")
        obj["MESSAGE"] = obj["MESSAGE"].replace(" ip=0x", f" ip=0x{i:x}")
        lines.append(encode(obj))
    collector = AuditCollector()
    collector.feed_lines(lines, fmt="journal-json")
    assert len(collector._raw["journal-json"].message) <= 50
    (obs,) = collector.observations()
    assert obs.count == 400
    assert outcome(collector) == outcome(exact(lines))


def test_feed_file_equals_feed_lines_auto_and_explicit(tmp_path):
    lines = []
    for path in JOURNALS:
        lines += sample(path)
    target = tmp_path / "all.json"
    target.write_bytes(b"".join(lines))
    results = []
    for fmt in ("auto", "journal-json"):
        collector = AuditCollector()
        assert collector.feed_file(target, fmt) == "journal-json"
        results.append(outcome(collector))
    collector = AuditCollector()
    collector.feed_lines(lines, fmt="journal-json")
    results.append(outcome(collector))
    assert results[0] == results[1] == results[2]
