"""One boot read from several formats at once (journal JSON, dmesg, syslog, audit.log) counts each
record once: the real guest samples of tests/data/guest hold one boot per arch in every format."""

from __future__ import annotations

import itertools
import os

import pytest

from seccomp_py.audit import AuditCollector

GUEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "guest")
HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "audit", "host-x86_64")
FILES = ("journal-audit.json", "journal-kernel.json", "journal-mixed.json", "dmesg.txt", "syslog.txt", "audit.log")


def serials(path: str) -> set:
    with open(path, "rb") as handle:
        return {r.serial for r in AuditCollector().records(handle, path=path)}


def collect(*paths: str) -> AuditCollector:
    collector = AuditCollector()
    for path in paths:
        collector.feed_file(path)
    return collector


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_printk_copies_in_the_journal_and_in_dmesg_count_once(arch):
    journal, dmesg = (os.path.join(GUEST, arch, name) for name in ("journal-kernel.json", "dmesg.txt"))
    alone = collect(journal).stats.records
    assert alone == collect(dmesg).stats.records > 0  # the same printk records, trimmed alike
    for order in ((journal, dmesg), (dmesg, journal)):
        collector = collect(*order)
        assert (collector.stats.records, collector.stats.duplicates) == (alone, alone)
        assert sum(o.count for o in collector.observations()) == alone


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("pair", list(itertools.combinations(FILES, 2)), ids="+".join)
def test_any_two_formats_of_one_boot_count_the_union_of_serials(arch, pair):
    paths = [os.path.join(GUEST, arch, name) for name in pair]
    union = set.union(*map(serials, paths))
    assert None not in union
    for order in (paths, paths[::-1]):
        collector = collect(*order)
        assert collector.stats.records == len(union), order
        assert sum(o.count for o in collector.observations()) == len(union)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_format_at_once(arch):
    paths = [os.path.join(GUEST, arch, name) for name in FILES]
    union = set.union(*map(serials, paths))
    for order in (paths, paths[::-1]):
        assert collect(*order).stats.records == len(union)


def test_the_journal_and_the_kernel_transport_inside_it_agree():
    # journal-mixed.json holds both transports of the same window: the same as audit + kernel exports
    for arch in ("x86_64", "aarch64"):
        mixed = collect(os.path.join(GUEST, arch, "journal-mixed.json")).stats.records
        apart = collect(*(os.path.join(GUEST, arch, n) for n in ("journal-audit.json", "dmesg.txt"))).stats.records
        assert mixed == apart


def test_other_boots_stay_apart():
    """Serials restart at every boot: records of two boots with the same serials are not duplicates."""
    paths = [os.path.join(GUEST, "x86_64", "dmesg.txt"), os.path.join(GUEST, "aarch64", "dmesg.txt"),
             os.path.join(HOST, "journal-seccomp.json"), os.path.join(HOST, "dmesg.txt")]
    alone = [collect(p).stats.records for p in paths]
    host_together = len(serials(paths[2]) | serials(paths[3]))
    assert serials(paths[0]) & serials(paths[1])  # the guests' serials overlap: only time tells them apart
    collector = collect(*paths)
    assert collector.stats.records == alone[0] + alone[1] + host_together


def test_collect_cli_counts_journal_plus_dmesg_once(tmp_path):
    import subprocess
    import sys

    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "seccomp-py")
    guest = os.path.join(GUEST, "x86_64")
    expected = len(serials(os.path.join(guest, "journal-audit.json")) | serials(os.path.join(guest, "dmesg.txt")))
    out = subprocess.run([sys.executable, tool, "collect", "-i", os.path.join(guest, "journal-audit.json"),
                          "-i", os.path.join(guest, "dmesg.txt"), "-o", str(tmp_path / "p.json")],
                         check=True, capture_output=True, text=True).stdout
    assert f"audit: {expected} SECCOMP records" in out, out
    help_text = subprocess.run([sys.executable, tool, "collect", "--help"], check=True, capture_output=True,
                               text=True).stdout
    assert "count each SECCOMP record once" in " ".join(help_text.split())
