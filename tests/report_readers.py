"""Read back what --report-to wrote, with each library's own reader: TensorBoard's EventAccumulator and wandb's
protobuf ``Record`` schema (the tests of train/report.py and of evaluation during training)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any


def tensorboard_events(log_dir: Path) -> Any:
    """An ``EventAccumulator`` over ``log_dir`` that keeps every event (no sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of ``log_dir`` with its (step, value) events in order."""
    accumulator = tensorboard_events(log_dir)
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def wandb_records(path: Path) -> list[Any]:
    """The records of a ``.wandb`` file: a 7-byte header, then LevelDB-log framing (32 KiB blocks; each chunk
    a 4-byte checksum, 2-byte length and 1-byte type: full, first, middle, last) around wandb's protobuf
    ``Record`` messages (decoded with wandb's own schema)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B datastore file"
    block, records, pending, position = 32768, [], b"", 7
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position:position + 7])
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_offline_run(out: Path) -> list[Any]:
    """The records of the offline W&B run of the training run in ``out`` (its id in ``out/wandb-run-id``)."""
    run_id = (out / "wandb-run-id").read_text().strip()
    [datastore] = list((out / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    return wandb_records(datastore)


def wandb_history(records: list[Any]) -> dict[int, dict[str, Any]]:
    """The history of a W&B run by step: every logged key with its value (a table as its file reference)."""
    history: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {(item.key or "/".join(item.nested_key)): json.loads(item.value_json)
                     for item in record.history.item}
            history.setdefault(int(items["_step"]), {}).update(items)
    return history
