"""The journal: rotation within the cap, claims, and locks that die with their process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from floopy.observability.journal import (
    JournalFile,
    OwnerLock,
    claim_order,
    journal_files,
    owner_alive,
    try_lock,
)

CAP = 4096


def row(i: int) -> bytes:
    return b'{"request_id":"r%06d","pad":"%s"}' % (i, b"x" * 90)


def rows_in(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_rotation_keeps_three_files_within_the_cap_and_counts_what_it_drops(
    tmp_path: Path,
) -> None:
    journal = JournalFile(tmp_path, "requests", "1-abc", CAP)
    dropped = 0
    written = 0
    for start in range(0, 400, 7):
        batch = [row(i) for i in range(start, min(start + 7, 400))]
        dropped += journal.append(batch)
        written += len(batch)
        files = journal_files(tmp_path, "requests")["1-abc"]
        assert len(files) <= 3
        assert all(path.stat().st_size <= CAP for path in files)
    kept = sum(rows_in(path) for path in files)
    assert dropped > 0
    assert kept + dropped == written  # every row is on disk or counted as dropped


def test_a_hand_over_rotates_for_the_store_and_the_writer_starts_a_fresh_file(
    tmp_path: Path,
) -> None:
    writer = JournalFile(tmp_path, "spans", "1-abc", CAP)
    store = JournalFile(tmp_path, "spans", "2-store", CAP)
    for i in range(20):
        writer.append([row(i)])
    assert writer.hand_over()
    claimed = store.adopt(writer.live.with_name(writer.live.name + ".1"))
    writer.append([row(999)])
    assert rows_in(claimed) == 20
    assert writer.live.read_bytes() == row(999) + b"\n"
    assert store.claimed() == [claimed]


def test_claim_order_of_a_dead_processes_files(tmp_path: Path) -> None:
    names = ["s.1-a.jsonl", "s.1-a.jsonl.2", "s.1-a.claimed.0002.jsonl", "s.1-a.jsonl.1"]
    ordered = [p.name for p in claim_order([tmp_path / n for n in names])]
    assert ordered == ["s.1-a.claimed.0002.jsonl", "s.1-a.jsonl.2", "s.1-a.jsonl.1", "s.1-a.jsonl"]


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from floopy.observability.journal import OwnerLock
    lock = OwnerLock(Path(sys.argv[1]), "77-dead")
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_an_owner_lock_is_released_when_its_process_is_killed(tmp_path: Path) -> None:
    # The context closes the pipe too (an open one is a ResourceWarning, an error here).
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            assert owner_alive(tmp_path, "77-dead")
        finally:
            proc.kill()
    assert not owner_alive(tmp_path, "77-dead")


def test_locks_are_exclusive_within_a_process_too(tmp_path: Path) -> None:
    mine = OwnerLock(tmp_path, "1-me")
    assert owner_alive(tmp_path, "1-me")
    with try_lock(tmp_path / "x.replaying") as first, try_lock(tmp_path / "x.replaying") as second:
        assert first and not second
    with try_lock(tmp_path / "x.replaying") as again:
        assert again
    mine.release()
    assert not owner_alive(tmp_path, "1-me")
