"""The native JSONL spool writer and reader, through the Python binding."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from floopy._native import JsonlReader, JsonlWriter
from floopy.errors import InvalidField


def record(n: int) -> bytes:
    return json.dumps({"request_id": f"req-{n:04d}"}).encode()


RECORD_LINE = len(record(0)) + 1


def read_records(path: str | Path, batch_size: int = 1000) -> list[bytes]:
    return [line for batch in JsonlReader(str(path), batch_size) for line in batch]


def names(paths: list[str]) -> list[str]:
    return [Path(p).name for p in paths]


def test_records_are_appended_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    writer = JsonlWriter(str(path))
    writer.write(record(1))
    writer.write_many([record(2), record(3)])
    writer.flush()
    assert path.read_bytes() == record(1) + b"\n" + record(2) + b"\n" + record(3) + b"\n"
    assert writer.files() == [str(path)]
    assert (writer.path, writer.max_bytes, writer.generations) == (str(path), 104_857_600, 3)


def test_parent_directories_are_created_and_path_like_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "fallback" / "spans.jsonl"
    JsonlWriter(path).write(b"{}")
    assert path.read_bytes() == b"{}\n"


def test_rotation_keeps_three_generations_and_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlWriter(str(path), max_bytes=3 * RECORD_LINE)
    for n in range(10):
        writer.write(record(n))
    assert names(writer.files()) == ["x.jsonl.2", "x.jsonl.1", "x.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl", "x.jsonl.1", "x.jsonl.2"]
    assert [read_records(p) for p in writer.files()] == [
        [record(3), record(4), record(5)],
        [record(6), record(7), record(8)],
        [record(9)],
    ]


def test_generations_setting_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlWriter(str(path), max_bytes=RECORD_LINE, generations=2)
    for n in range(5):
        writer.write(record(n))
    assert names(writer.files()) == ["x.jsonl.1", "x.jsonl"]
    assert [read_records(p) for p in writer.files()] == [[record(3)], [record(4)]]


def test_no_rotation_while_under_the_cap(tmp_path: Path) -> None:
    writer = JsonlWriter(str(tmp_path / "x.jsonl"), max_bytes=4 * RECORD_LINE)
    writer.write_many([record(n) for n in range(4)])
    assert names(writer.files()) == ["x.jsonl"]
    writer.write(record(4))
    assert names(writer.files()) == ["x.jsonl.1", "x.jsonl"]


def test_a_record_with_a_newline_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlWriter(str(path))
    with pytest.raises(ValueError, match="newline") as refused:
        writer.write(b'{"a":\n1}')
    assert isinstance(refused.value, InvalidField)
    assert refused.value.param == "record"
    with pytest.raises(InvalidField) as refused_batch:
        writer.write_many([record(1), b"{}\n{}"])
    assert refused_batch.value.param == "records.1"
    assert not path.exists() or path.read_bytes() == b""


def test_invalid_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        JsonlWriter(str(tmp_path / "x.jsonl"), generations=0)
    with pytest.raises(ValueError):
        JsonlWriter(str(tmp_path / "x.jsonl"), max_bytes=0)
    with pytest.raises(ValueError):
        JsonlReader(str(tmp_path / "x.jsonl"), batch_size=0)


@pytest.mark.parametrize("argument", ["max_bytes", "generations"])
def test_negative_writer_settings_are_value_errors_naming_them(
    tmp_path: Path, argument: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{argument} must not be negative, got -1$"):
        JsonlWriter(str(tmp_path / "x.jsonl"), **{argument: -1})


def test_a_negative_batch_size_is_a_value_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^batch_size must not be negative, got -1$"):
        JsonlReader(str(tmp_path / "x.jsonl"), batch_size=-1)


def test_threads_writing_through_two_writers_produce_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writers = [JsonlWriter(str(path)), JsonlWriter(str(tmp_path / "." / "x.jsonl"))]
    threads, per_thread = 8, 200

    def work(thread: int) -> None:
        writer = writers[thread % 2]
        for n in range(per_thread):
            line = json.dumps({"thread": thread, "n": n, "pad": "x" * (n % 97)}).encode()
            if n % 20 == 0:
                writer.write_many([line, json.dumps({"thread": thread, "batch": n}).encode()])
            else:
                writer.write(line)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(threads)))

    lines = read_records(path)
    assert len(lines) == threads * (per_thread + per_thread // 20)
    decoded = [json.loads(line) for line in lines]
    seen = {(d["thread"], d["n"]) for d in decoded if "n" in d}
    assert seen == {(t, n) for t in range(threads) for n in range(per_thread)}


def test_threads_writing_across_rotations_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlWriter(str(path), max_bytes=10 * RECORD_LINE, generations=100)

    def work(thread: int) -> None:
        for n in range(50):
            writer.write(record(thread * 50 + n))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))

    files = writer.files()
    assert len(files) == 20
    assert sorted(line for f in files for line in read_records(f)) == [
        record(n) for n in range(200)
    ]


def test_reader_yields_batches_of_up_to_batch_size(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    JsonlWriter(str(path)).write_many([record(n) for n in range(7)])
    reader = JsonlReader(str(path), batch_size=3)
    assert [len(batch) for batch in reader] == [3, 3, 1]
    assert reader.skipped == 0
    assert read_records(path, batch_size=3) == [record(n) for n in range(7)]


def test_reader_skips_and_counts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(record(1) + b"\n" + record(2) + b"\n" + b'{"request_id": "req-')
    reader = JsonlReader(str(path), batch_size=10)
    assert list(reader) == [[record(1), record(2)]]
    assert reader.skipped == 1


def test_reader_of_an_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"")
    reader = JsonlReader(str(path))
    assert list(reader) == []
    assert reader.skipped == 0


def test_reader_of_a_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        JsonlReader(str(tmp_path / "missing.jsonl"))


def test_writer_after_a_crash_keeps_new_records_whole(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(record(1) + b"\n" + b'{"torn')
    JsonlWriter(str(path)).write(record(2))
    lines = read_records(path)
    assert lines[0] == record(1)
    assert lines[-1] == record(2)


def test_a_live_file_deleted_by_hand_is_started_afresh_at_the_hand_over(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlWriter(str(path))
    writer.write(record(1))
    path.unlink()
    assert writer.hand_over() is False
    writer.write(record(2))
    assert read_records(path) == [record(2)]


def test_a_hand_over_rotates_only_once_generation_one_was_taken(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    first = tmp_path / "x.jsonl.1"
    writer = JsonlWriter(str(path))
    assert writer.write(record(1)) == 0
    assert writer.hand_over() is True
    writer.write(record(2))
    assert writer.hand_over() is False  # .1 not taken yet: the live file grows
    first.rename(tmp_path / "taken.jsonl")
    assert writer.hand_over() is True
    assert read_records(first) == [record(2)]


def test_close_releases_the_file_and_a_later_write_reopens_it(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    writer = JsonlWriter(str(path))
    writer.write(record(1))
    writer.close()
    writer.write(record(2))
    writer.sync()
    assert read_records(path) == [record(1), record(2)]
