"""Coverage-guided fuzzing (atheris: libFuzzer over Python coverage) of every decoder of
outside bytes; the Hypothesis tests in tests/unit/fuzz are the bounded, reproducible part
that CI runs. The first input byte picks the decoder, the rest are its bytes. An input
passes when it gives a result or the product's typed error (ZgError); anything else is a
crash that libFuzzer reports with the input that caused it (crash-<sha1> in the working
directory: replay it by passing that file as the only argument).

    pip install -e ".[fuzz]"                                 # atheris (a wheel for 3.11)
    python fuzz/atheris_decoders.py --write-seeds /tmp/zg-corpus   # valid encodings
    python fuzz/atheris_decoders.py /tmp/zg-corpus -atheris_runs=500000 -max_len=4096
    ZG_FUZZ_ONLY=KV python fuzz/atheris_decoders.py ...      # only the decoders named so

Seeds are valid encodings built with the product's own encoders and real keys, so that
libFuzzer's mutations start past the first length checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

# py-evm and rlp too: an Ethereum raw tx is decoded there, behind decode_tx
with atheris.instrument_imports(include=["zg_actors", "eth", "rlp"]):
    from zg_actors.chain.block import Block, CommitCertificate, Header
    from zg_actors.chain.tx import decode_tx, make_tx
    from zg_actors.chain.validator_set import ValidatorInfo, ValidatorSet
    from zg_actors.compute.request import Receipt, Request, make_receipt, sign_request
    from zg_actors.compute.settlement import Settlement, SettlementResult
    from zg_actors.crypto.devkeys import load_account, validator_identity
    from zg_actors.crypto.encoding import decode, encode
    from zg_actors.crypto.keccak import keccak256
    from zg_actors.crypto.merkle import merkle_proof, proof_from_list
    from zg_actors.da.blob import BlobHeader, check_blob_id
    from zg_actors.da.certificate import Batch, DACertificate
    from zg_actors.da.quorum import EpochRegistry
    from zg_actors.errors import ZgError
    from zg_actors.rpc import disperser_pb2 as pb
    from zg_actors.rpc.errors import MalformedMessage
    from zg_actors.rpc.gateway import _parse_or_refuse
    from zg_actors.storage.kv import KVTx, StreamWrite
    from zg_actors.storage.kv import decode_tx as decode_kv_tx
    from zg_actors.storage.kv import encode_tx as encode_kv_tx


def _gateway(message: type) -> Callable[[bytes], object]:
    parse = _parse_or_refuse(message)

    def handle(raw: bytes) -> object:
        request = parse(raw)
        if isinstance(request, MalformedMessage):
            return request
        for name in ("request_id", "storage_root"):
            if request.DESCRIPTOR.fields_by_name.get(name):
                check_blob_id(name, getattr(request, name))
        return request
    return handle


def _request(raw: bytes) -> object:
    request = Request.from_list(decode(raw))
    return request.hash


TARGETS: list[tuple[str, Callable[[bytes], object]]] = [
    ("canonical encoding", decode),
    ("chain tx (ours or Ethereum's raw)", decode_tx),
    ("block", Block.decode),
    ("header", Header.decode),
    ("commit certificate", CommitCertificate.decode),
    ("validator set", ValidatorSet.decode),
    ("DA blob header", BlobHeader.decode),
    ("DA certificate", DACertificate.decode),
    ("DA epoch registry", EpochRegistry.decode),
    ("gRPC DisperseBlobRequest", _gateway(pb.DisperseBlobRequest)),
    ("gRPC BlobStatusRequest", _gateway(pb.BlobStatusRequest)),
    ("gRPC RetrieveBlobRequest", _gateway(pb.RetrieveBlobRequest)),
    ("compute request", _request),
    ("compute receipt", Receipt.decode),
    ("compute settlement", lambda raw: Settlement.from_list(decode(raw))),
    ("compute settlement result", lambda raw: SettlementResult.from_list(decode(raw))),
    ("Merkle proof", lambda raw: proof_from_list(decode(raw))),
    ("KV tx body", decode_kv_tx),
]


# ZG_FUZZ_ONLY=text: only the decoders whose name contains it (e.g. "KV", "gRPC")
ONLY = os.environ.get("ZG_FUZZ_ONLY", "")
CHOSEN = [decoder for name, decoder in TARGETS if ONLY.lower() in name.lower()] or sys.exit(
    f"ZG_FUZZ_ONLY={ONLY!r} names none of: {', '.join(name for name, _ in TARGETS)}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    decoder = CHOSEN[data[0] % len(CHOSEN)]
    with contextlib.suppress(ZgError):  # the typed refusal passes; anything else crashes
        decoder(data[1:])


def seeds() -> dict[str, bytes]:
    """A valid input for each decoder, built with the product's encoders and real keys."""
    alice, bob = load_account("zg-devnet", 0), load_account("zg-devnet", 1)
    tx = make_tx(alice, 1, 0, "token", "transfer", [bob.address, 10**18], fee=7)
    header = Header(1, 1, 0, 1_700_000_000_000, bytes(32), alice.address, keccak256(b"t"),
                    keccak256(b"r"), keccak256(b"s"), keccak256(b"v"), bytes(32), 0)
    cert = CommitCertificate(1, 1, 0, header.hash, b"\x07", bytes(96))
    identities = [validator_identity("zg-devnet", i) for i in range(2)]
    vset = ValidatorSet.from_list([ValidatorInfo(i.address, i.bls_pubkey, 100)
                                   for i in identities])
    blob = BlobHeader(keccak256(b"root"), 5_000, 3, 1, 0)
    signed = sign_request(alice, 0, bob.address, 7, "hello", 10**15, 32)
    receipt = make_receipt(signed.request, signed.signature, 5, 9, "hi", 1, 2).signed_by(bob)
    proof = merkle_proof([keccak256(bytes([i])) for i in range(5)], 3).to_list()
    inputs = [encode([b"a", [b"bc", []]]), tx.encoded, Block(header, (tx,), cert).encode(),
              header.encode(), cert.encode(), vset.encode(), blob.encode(),
              DACertificate(Batch(0, 3, 1, (blob,)), b"\x01", bytes(96)).encode(),
              EpochRegistry(3, keccak256(b"seed"), ()).encode(),
              pb.DisperseBlobRequest(data=b"blob").SerializeToString(),
              pb.BlobStatusRequest(request_id=blob.key).SerializeToString(),
              pb.RetrieveBlobRequest(storage_root=blob.data_root, epoch=3,
                                     quorum_id=1).SerializeToString(),
              encode(signed.request.to_list()), receipt.encode(),
              encode([alice.address, []]), encode([alice.address, 1, 5, 2, 7, [[8, 3]]]),
              encode([list(proof[0]), [b"\x01" if p else b"" for p in proof[1]]]),
              encode_kv_tx(KVTx(1, (), (StreamWrite(keccak256(b"s"), b"k", b"v"),)))]
    return {name: bytes([i]) + raw for i, ((name, _), raw) in enumerate(zip(TARGETS, inputs,
                                                                          strict=True))}


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:
        corpus = Path(sys.argv[2])
        corpus.mkdir(parents=True, exist_ok=True)
        for raw in seeds().values():
            (corpus / hashlib.sha1(raw).hexdigest()).write_bytes(raw)
        print(f"{len(TARGETS)} seeds in {corpus}")
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
