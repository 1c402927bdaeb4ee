"""Streams: plain/zstd JSONL, '-' handling, atomic output, one-line errors naming path, line and field."""

from __future__ import annotations

import io
import sys

import orjson
import pytest
import zstandard

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.records import ExecRequest
from r1ci_cli.streams import open_records, read_all, record_sink


def _write_lines(path, lines: list[bytes], zstd: bool = False) -> None:
    data = b"".join(line + b"\n" for line in lines)
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if zstd else data)


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.zst"])
def test_round_trip_keeps_unknown_fields(tmp_path, name):
    path = str(tmp_path / name)
    with record_sink(path) as sink:
        sink.write(ExecRequest(id="a", code="print(1)", extra={"note": {"k": [1, 2]}}))
        sink.write({"id": "b", "code": "x", "timeout_s": 2})
    raw = (tmp_path / name).read_bytes()
    assert raw.startswith(b"\x28\xb5\x2f\xfd") == name.endswith(".zst")
    back = read_all(path, ExecRequest)
    assert [r.id for r in back] == ["a", "b"]
    assert back[0].to_dict()["note"] == {"k": [1, 2]}
    assert back[1].timeout_s == 2.0


def test_zstd_is_detected_by_magic_not_name(tmp_path):
    path = tmp_path / "misleading.jsonl"
    _write_lines(path, [b'{"id":"a","code":"1"}'], zstd=True)
    assert [r.id for r in read_all(str(path), ExecRequest)] == ["a"]


def test_concatenated_zstd_frames_read_as_one_stream(tmp_path):
    path = tmp_path / "cat.jsonl.zst"
    comp = zstandard.ZstdCompressor()
    path.write_bytes(comp.compress(b'{"id":"a","code":"1"}\n') + comp.compress(b'{"id":"b","code":"2"}\n'))
    assert [r.id for r in read_all(str(path), ExecRequest)] == ["a", "b"]


def test_blank_lines_are_skipped_and_last_line_may_lack_newline(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id":"a","code":"1"}\n\n{"id":"b","code":"2"}')
    assert [r.id for r in read_all(str(path), ExecRequest)] == ["a", "b"]


@pytest.mark.parametrize(
    ("line3", "message"),
    [
        (b'{"id": "c", "code": ', "x.jsonl:3: invalid JSON"),
        (b'{"id": "c", "code": 5}', "x.jsonl:3: field 'code': must be a string, got int"),
        (b'{"id": "c"}', "x.jsonl:3: field 'code': missing"),
        (b'{"id": "c", "code": "1", "timeout_s": -1}', "x.jsonl:3: field 'timeout_s': must be positive"),
        (b'{"id": "c", "code": "1", "timeout_s": true}', "x.jsonl:3: field 'timeout_s': must be a number"),
        (b'[1, 2]', "x.jsonl:3: expected a JSON object"),
    ],
)
def test_malformed_line_names_path_line_and_field(tmp_path, line3, message):
    path = tmp_path / "x.jsonl"
    _write_lines(path, [b'{"id":"a","code":"1"}', b'{"id":"b","code":"2"}', line3])
    with pytest.raises(BadRecord) as err:
        read_all(str(path), ExecRequest)
    text = str(err.value)
    assert text.startswith(str(path) + ":3: ") and message.split(":", 1)[1] in text
    assert "\n" not in text


def test_truncated_zstd_frame_is_an_error(tmp_path):
    data = zstandard.ZstdCompressor().compress(b"".join(b'{"id":"%d","code":"1"}\n' % i for i in range(2000)))
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadRecord, match="truncated zstd frame"):
        read_all(str(path), ExecRequest)


def test_corrupt_zstd_is_an_error(tmp_path):
    path = tmp_path / "bad.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 64)
    with pytest.raises(BadRecord):
        read_all(str(path), ExecRequest)


def test_missing_input_file_is_one_line(tmp_path):
    with pytest.raises(R1ciError, match="no such file"):
        read_all(str(tmp_path / "nope.jsonl"))


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "out.jsonl.zst"
    with pytest.raises(RuntimeError):
        with record_sink(str(path)) as sink:
            sink.write({"id": "a"})
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_a_failed_write(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id":"old"}\n')
    with pytest.raises(RuntimeError):
        with record_sink(str(path)) as sink:
            sink.write({"id": "new"})
            raise RuntimeError("boom")
    assert path.read_bytes() == b'{"id":"old"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_stdin_and_stdout(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(b'{"id":"a","code":"1","extra_field":3}\n'))
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    with open_records("-", ExecRequest) as rows, record_sink("-") as sink:
        sink.write_all(rows)
    record = orjson.loads(out.getvalue())
    assert record["id"] == "a" and record["extra_field"] == 3


def test_stdout_can_be_zstd(monkeypatch):
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    with record_sink("-", compress=True) as sink:
        sink.write({"id": "a"})
    assert zstandard.ZstdDecompressor().decompress(out.getvalue(), max_output_size=1 << 20) == b'{"id":"a"}\n'


@pytest.mark.parametrize("zstd", [False, True])
def test_lines_split_across_many_chunks_read_back_whole(tmp_path, monkeypatch, zstd):
    import r1ci_cli.streams as streams

    monkeypatch.setattr(streams, "_CHUNK", 7)
    lines = [b'{"id":"%d","code":"%s"}' % (i, b"x" * (i * 13)) for i in range(40)]
    path = tmp_path / "x.jsonl"
    _write_lines(path, lines, zstd=zstd)
    assert [line for _, line in streams.iter_lines(str(path))] == lines


@pytest.mark.parametrize("zstd", [False, True])
def test_a_line_over_the_cap_is_refused_with_file_and_line(tmp_path, monkeypatch, zstd):
    import r1ci_cli.streams as streams

    monkeypatch.setattr(streams, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "x.jsonl"
    _write_lines(path, [b'{"id":"a","code":"1"}', b'{"id":"b","code":"' + b"x" * 5000 + b'"}'], zstd=zstd)
    with pytest.raises(BadRecord) as err:
        read_all(str(path), ExecRequest)
    assert str(err.value).startswith(f"{path}:2: ") and "1000 bytes" in str(err.value)


def test_a_last_line_without_newline_over_the_cap_is_refused(tmp_path, monkeypatch):
    import r1ci_cli.streams as streams

    monkeypatch.setattr(streams, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id":"a","code":"1"}\n' + b"y" * 3000)
    with pytest.raises(BadRecord, match=":2: "):
        read_all(str(path), ExecRequest)
