"""A disperser's records (pure): each blob it acknowledged, its status, and its payload
until the blob is final, in LMDB.

A disperser persists (synced) a blob's record and payload before it answers with
the request id, so a restarted disperser finds the blobs it acknowledged and did
not finish (`unfinished`) and resumes them from their payloads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lmdb

from zg_actors.crypto.encoding import encode
from zg_actors.da.blob import BlobHeader, check_blob_id
from zg_actors.da.dispersal import PendingBlob
from zg_actors.da.errors import Overloaded, UnknownBlob
from zg_actors.da.params import BlobStatus
from zg_actors.da.status import Status
from zg_actors.store import Store, Write

BLOBS_DB = "blobs"  # request id (the header's key) -> JSON record (blob_record)
ROOTS_DB = "roots"  # [data root, epoch, quorum id] -> request id
PAYLOADS_DB = "payloads"  # request id -> the blob's bytes, while the blob is not final


def blob_record(header: BlobHeader, created: float, status: int, error: str = "",
                finalized_at: float | None = None) -> bytes:
    """A disperser's LMDB record of one blob (JSON; DisperserStore.record reads it back)."""
    record: dict[str, Any] = {"status": int(status), "header": header.encode().hex(),
                              "network_id": header.network_id, "created": created}
    if error:
        record["error"] = error
    if finalized_at is not None:
        record["finalized_at"] = finalized_at
    return json.dumps(record).encode()


def status_of(header: BlobHeader, status: int, error: str) -> Status:
    """What GetBlobStatus tells about a blob (Disperser.status, the status feed)."""
    return {"request_id": header.key, "status": int(status), "error": error,
            "data_root": header.data_root, "size": header.size, "epoch": header.epoch,
            "quorum_id": header.quorum_id, "network_id": header.network_id}


class DisperserStore:
    """One disperser's LMDB, with its count of blobs per status."""

    def __init__(self, path: str | Path, index: int, map_mb: int = 1024) -> None:
        self.index = index
        self.map_mb = map_mb
        self.store = Store(path, [BLOBS_DB, ROOTS_DB, PAYLOADS_DB], map_mb)
        # One scan at open counts the statuses and finds the blobs a previous process
        # acknowledged and did not finish.
        self.status_counts: dict[int, int] = {}  # {status: blobs}
        self.unfinished: list[bytes] = []
        for key, raw in self.store.items(BLOBS_DB):
            record = json.loads(raw)
            if record["status"] in (BlobStatus.PROCESSING, BlobStatus.CONFIRMED):
                self.unfinished.append(key)
            self._count(record["status"], +1)

    def _count(self, status: int, change: int) -> None:
        self.status_counts[status] = self.status_counts.get(status, 0) + change

    def record(self, request_id: bytes) -> dict:
        check_blob_id("request_id", request_id)
        raw = self.store.get(BLOBS_DB, request_id)
        if raw is None:
            raise UnknownBlob(f"unknown blob request 0x{request_id.hex()}",
                              request_id=request_id)
        return json.loads(raw)

    def header(self, request_id: bytes) -> BlobHeader:
        return BlobHeader.decode(bytes.fromhex(self.record(request_id)["header"]))

    def status(self, request_id: bytes) -> Status:
        record = self.record(request_id)
        return status_of(BlobHeader.decode(bytes.fromhex(record["header"])),
                         record["status"], record.get("error", ""))

    def find(self, data_root: bytes, epoch: int, quorum_id: int) -> bytes:
        """The request id of the blob with this data root in (epoch, quorum)."""
        check_blob_id("storage_root", data_root)
        key = self.store.get(ROOTS_DB, encode([data_root, epoch, quorum_id]))
        if key is None:
            raise UnknownBlob(f"no blob with data root 0x{data_root.hex()} in epoch {epoch} "
                              f"quorum {quorum_id}", data_root=data_root, epoch=epoch,
                              quorum_id=quorum_id)
        return key

    def payload(self, request_id: bytes) -> bytes | None:
        return self.store.get(PAYLOADS_DB, request_id)

    def accept(self, blobs: Sequence[tuple[PendingBlob, bytes]]) -> None:
        """Persist (synced) new blobs, PROCESSING, with their payloads: only then may their
        request ids be answered. Overloaded if the store is full (it keeps each payload
        until the blob is final); nothing is recorded then."""
        writes: list[Write] = []
        for pending, payload in blobs:
            header = pending.header
            writes += [
                (BLOBS_DB, header.key, blob_record(header, pending.created,
                                                   BlobStatus.PROCESSING)),
                (PAYLOADS_DB, header.key, payload),
                (ROOTS_DB, encode([header.data_root, header.epoch, header.quorum_id]),
                 header.key)]
        try:
            self.store.write(writes)
        except lmdb.MapFullError as exc:
            raise Overloaded(f"disperser {self.index}'s store is full "
                             f"(lmdb_map_mb = {self.map_mb}): it keeps each blob's payload "
                             "until the blob is final; retry later",
                             lmdb_map_mb=self.map_mb) from exc
        self._count(BlobStatus.PROCESSING, len(blobs))

    def finish(self, blobs: Sequence[PendingBlob], status: BlobStatus, error: str,
               now: float) -> None:
        """Persist the blobs' new status (CONFIRMED, or final: the payload goes) and set
        it on each PendingBlob."""
        writes: list[Write] = []
        final = status == BlobStatus.FINALIZED
        for pending in blobs:  # the whole record from memory: no read back
            writes.append((BLOBS_DB, pending.header.key, blob_record(
                pending.header, pending.created, status, error, now if final else None)))
            if status != BlobStatus.CONFIRMED:  # final: nothing left to resume
                writes.append((PAYLOADS_DB, pending.header.key, None))
        self.store.write(writes)
        for pending in blobs:
            self._count(pending.status, -1)
            self._count(status, +1)
            pending.status = int(status)

    def close(self) -> None:
        self.store.close()
