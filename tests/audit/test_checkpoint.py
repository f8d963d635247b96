"""C2SP checkpoints, signed notes, cosignatures, key files and the witness add-checkpoint rules."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from biobank.audit.checkpoint import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    BadSignature,
    Checkpoint,
    MalformedCheckpoint,
    MalformedNote,
    NoteSigner,
    NoteVerifier,
    UnverifiedNote,
    WitnessBadProof,
    WitnessBadRequest,
    WitnessConflict,
    WitnessForbidden,
    WitnessState,
    WitnessUnknownLog,
    cosign,
    format_add_checkpoint_request,
    format_checkpoint,
    generate_key_file,
    key_id,
    load_signer,
    open_note,
    parse_add_checkpoint_request,
    parse_checkpoint,
    sign_note,
    verify_cosignature,
    witness_add_checkpoint,
)
from biobank.audit.merkle import EMPTY_ROOT, MemoryNodeStore, append_many, consistency_proof, leaf_hash, root

ORIGIN = "biobank.example/CN-SH-RJ/audit"
SEED = bytes(range(32))
WITNESS_SEED = bytes(range(32, 64))
TIME = 1_795_000_000


def log_signer() -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))


def witness_signer() -> NoteSigner:
    return NoteSigner("witness.example/w1", Ed25519PrivateKey.from_private_bytes(WITNESS_SEED))


def tree(size: int) -> MemoryNodeStore:
    store = MemoryNodeStore()
    store.put(append_many(0, [leaf_hash(f"entry {i}".encode()) for i in range(size)], store))
    return store


def signed_checkpoint(size: int, store: MemoryNodeStore, signer: NoteSigner | None = None) -> str:
    return sign_note(format_checkpoint(ORIGIN, size, root(size, store)), [signer or log_signer()])


# --- checkpoint body -----------------------------------------------------------------------------------


def test_checkpoint_body_exact_bytes() -> None:
    digest = hashlib.sha256(b"root").digest()
    body = format_checkpoint("example.com/log42", 20852163, digest)
    assert body == f"example.com/log42\n20852163\n{base64.b64encode(digest).decode()}\n"
    assert body.endswith("\n") and body.count("\n") == 3
    assert format_checkpoint("o", 0, EMPTY_ROOT) == "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


def test_checkpoint_round_trip_and_extensions() -> None:
    digest = hashlib.sha256(b"x").digest()
    checkpoint = parse_checkpoint(format_checkpoint(ORIGIN, 7, digest))
    assert checkpoint == Checkpoint(ORIGIN, 7, digest)
    extended = format_checkpoint(ORIGIN, 7, digest, ["ext one"])
    assert parse_checkpoint(extended).extensions == ("ext one",)
    assert parse_checkpoint(extended).body() == extended


def test_c2sp_example_checkpoint_parses() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = parse_checkpoint(body)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert len(checkpoint.root) == 32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "newline"),
        ("o\n1\n", "three lines"),
        ("\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "origin"),
        ("o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "leading zeroes"),
        ("o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "decimal"),
        ("o\n1\nnot base64!\n", "base64"),
        ("o\n1\nAAAA\n", "32 bytes"),
        ("o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n", "extension"),
    ],
)
def test_malformed_checkpoints_are_rejected(body: str, message: str) -> None:
    with pytest.raises(MalformedCheckpoint, match=message):
        parse_checkpoint(body)


def test_format_checkpoint_rejects_bad_values() -> None:
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint("two\nlines", 1, EMPTY_ROOT)
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint(ORIGIN, -1, EMPTY_ROOT)
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint(ORIGIN, 1, b"short")


# --- keys and note signatures --------------------------------------------------------------------------


def test_key_id_and_vkey_format() -> None:
    signer = log_signer()
    public = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert signer.key_id == expected == key_id(ORIGIN, SIG_ED25519, public)
    material = base64.b64encode(b"\x01" + public).decode()
    assert signer.vkey() == f"{ORIGIN}+{expected.hex()}+{material}"
    cosigner_id = hashlib.sha256(ORIGIN.encode() + b"\n\x04" + public).digest()[:4]
    assert signer.cosigner_verifier().key_id == cosigner_id
    assert signer.cosigner_vkey().split("+")[1] == cosigner_id.hex()
    verifier = NoteVerifier.from_vkey(signer.vkey())
    assert (verifier.name, verifier.public_key, verifier.sig_type) == (ORIGIN, public, SIG_ED25519)
    assert NoteVerifier.from_vkey(signer.cosigner_vkey()).sig_type == SIG_COSIGNATURE_V1


def test_go_sumdb_vkey_example_parses() -> None:
    # The verifier key of sum.golang.org, a deployed signed-note key.
    vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
    verifier = NoteVerifier.from_vkey(vkey)
    assert verifier.name == "sum.golang.org" and verifier.key_id.hex() == "033de0ae"
    assert verifier.vkey() == vkey


@pytest.mark.parametrize(
    "vkey",
    [
        "name",
        "name+033de0ae",
        "name+033DE0AE+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
        "sum.golang.org+00000000+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
        "sum.golang.org+033de0ae+Bc4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
        "sum.golang.org+033de0ae+AAAA",
    ],
)
def test_bad_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(MalformedNote):
        NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name"])
def test_bad_key_names_are_rejected(name: str) -> None:
    with pytest.raises(MalformedNote):
        NoteSigner(name, Ed25519PrivateKey.from_private_bytes(SEED))


def test_signed_note_exact_format_and_round_trip() -> None:
    signer = log_signer()
    body = format_checkpoint(ORIGIN, 3, hashlib.sha256(b"r").digest())
    note = sign_note(body, [signer])
    text, _ = note.split("\n\n")
    assert text + "\n" == body
    line = signer.sign(body)
    assert note == body + "\n" + line
    assert line.startswith("\u2014 " + ORIGIN + " ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == signer.key_id and len(raw) == 4 + 64
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(raw[4:], body.encode())  # plain RFC 8032
    assert open_note(note, [signer.verifier()]) == (body, [ORIGIN])
    assert open_note(note.encode(), [signer.verifier()]) == (body, [ORIGIN])


def test_note_text_with_blank_lines_splits_at_the_last_one() -> None:
    signer = log_signer()
    body = "first\n\nsecond paragraph\n"
    assert open_note(sign_note(body, [signer]), [signer.verifier()])[0] == body


def test_tampered_body_or_signature_is_rejected() -> None:
    signer = log_signer()
    body = format_checkpoint(ORIGIN, 3, hashlib.sha256(b"r").digest())
    note = sign_note(body, [signer])
    with pytest.raises(BadSignature, match=ORIGIN):
        open_note(note.replace("\n3\n", "\n4\n"), [signer.verifier()])
    prefix, encoded = note.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 1
    with pytest.raises(BadSignature):
        open_note(f"{prefix} {base64.b64encode(bytes(raw)).decode()}\n", [signer.verifier()])


def test_unknown_keys_are_ignored_and_no_known_key_is_refused() -> None:
    signer, stranger = log_signer(), NoteSigner.generate("someone.else/key")
    impostor = NoteSigner.generate(ORIGIN)  # same name, different key and key ID
    body = format_checkpoint(ORIGIN, 3, hashlib.sha256(b"r").digest())
    note = sign_note(body, [stranger, impostor, signer])
    assert open_note(note, [signer.verifier()]) == (body, [ORIGIN])
    with pytest.raises(UnverifiedNote):
        open_note(sign_note(body, [stranger, impostor]), [signer.verifier()])
    both = open_note(note, [signer.verifier(), stranger.verifier()])
    assert both == (body, ["someone.else/key", ORIGIN])


def test_same_name_and_key_id_with_a_bad_signature_is_not_ignored() -> None:
    signer = log_signer()
    body = "text\n"
    forged = "\u2014 " + ORIGIN + " " + base64.b64encode(signer.key_id + bytes(64)).decode() + "\n"
    with pytest.raises(BadSignature):
        open_note(sign_note(body, [signer]) + forged, [signer.verifier()])


@pytest.mark.parametrize(
    "note",
    [
        "no signatures\n",
        "text\n\n",
        "text\n\n\u2014 name AAAA\n",  # signature shorter than a key ID plus one byte
        "text\n\n- name AAAAAAAA\n",
        "text\n\n\u2014 name AAAAAAAA",
        "text\n\n\u2014 name  AAAAAAAA\n",
        "text\n\n\u2014 name not-base64!\n",
        "te\x00xt\n\n\u2014 name AAAAAAAA\n",
        "text\r\n\n\u2014 name AAAAAAAA\n",
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(note, [log_signer().verifier()])


def test_too_many_signatures_are_refused_but_sixteen_are_accepted() -> None:
    signer = log_signer()
    body = "text\n"
    others = "".join(NoteSigner.generate(f"k{i}").sign(body) for i in range(15))
    assert open_note(body + "\n" + others + signer.sign(body), [signer.verifier()])[1] == [ORIGIN]
    with pytest.raises(MalformedNote, match="more than"):
        open_note(body + "\n" + others * 5, [signer.verifier()])


def test_signing_refuses_text_without_final_newline() -> None:
    with pytest.raises(MalformedNote):
        log_signer().sign("no newline")


# --- cosignatures --------------------------------------------------------------------------------------


def test_cosignature_format_and_verification() -> None:
    witness = witness_signer()
    body = format_checkpoint(ORIGIN, 5, hashlib.sha256(b"r").digest())
    line = cosign(body, witness, TIME)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert len(raw) == 4 + 8 + 64
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + witness.public_key).digest()[:4]
    assert int.from_bytes(raw[4:12], "big") == TIME
    message = f"cosignature/v1\ntime {TIME}\n".encode() + body.encode()
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(raw[12:], message)
    assert verify_cosignature(body, line, witness.cosigner_verifier()) == TIME
    # A cosignature is a note signature: concatenated to the checkpoint it verifies as one.
    note = sign_note(body, [log_signer()]) + line
    assert open_note(note, [log_signer().verifier(), witness.cosigner_verifier()])[1] == [
        ORIGIN,
        "witness.example/w1",
    ]
    # The same key's plain-note verifier does not accept a cosignature (different key ID).
    with pytest.raises(UnverifiedNote):
        open_note(body + "\n" + line, [witness.verifier()])


def test_tampered_cosignatures_are_rejected() -> None:
    witness = witness_signer()
    body = format_checkpoint(ORIGIN, 5, hashlib.sha256(b"r").digest())
    line = cosign(body, witness, TIME)
    other_body = format_checkpoint(ORIGIN, 6, hashlib.sha256(b"r").digest())
    with pytest.raises(BadSignature):
        verify_cosignature(other_body, line, witness.cosigner_verifier())
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1  # change the timestamp
    forged = f"\u2014 witness.example/w1 {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(BadSignature):
        verify_cosignature(body, forged, witness.cosigner_verifier())
    with pytest.raises(UnverifiedNote):
        verify_cosignature(body, line, NoteSigner.generate("witness.example/w1").cosigner_verifier())
    with pytest.raises(ValueError, match="timestamp"):
        cosign(body, witness, -1)
    with pytest.raises(MalformedCheckpoint):
        cosign("not a checkpoint\n", witness, TIME)


# --- key files -----------------------------------------------------------------------------------------


def test_key_file_is_private_round_trips_and_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    signer = generate_key_file(path, ORIGIN)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = path.read_text()
    assert content.startswith(f"PRIVATE+KEY+{ORIGIN}+{signer.key_id.hex()}+") and content.endswith("\n")
    loaded = load_signer(path)
    assert loaded.public_key == signer.public_key and loaded.name == ORIGIN
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        generate_key_file(path, ORIGIN)
    assert path.read_text() == content


def test_private_key_string_round_trip_and_errors() -> None:
    signer = log_signer()
    assert NoteSigner.from_skey(signer.to_skey()).public_key == signer.public_key
    seed = base64.b64encode(b"\x04" + SEED).decode()
    cosigner_id = signer.cosigner_verifier().key_id.hex()
    assert NoteSigner.from_skey(f"PRIVATE+KEY+{ORIGIN}+{cosigner_id}+{seed}").public_key == signer.public_key
    for bad in [
        signer.vkey(),
        "PRIVATE+KEY+name",
        signer.to_skey().replace(signer.key_id.hex(), "00000000"),
        signer.to_skey()[:-4],
    ]:
        with pytest.raises(MalformedNote):
            NoteSigner.from_skey(bad)


# --- witness -------------------------------------------------------------------------------------------


def add(state: WitnessState | None, old: int, proof: list[bytes], note: str) -> tuple[WitnessState, str]:
    return witness_add_checkpoint(
        state, old, proof, note, log_signer().verifier(), witness_signer=witness_signer(), timestamp=TIME
    )


def test_witness_happy_path_from_empty_then_consistent_growth() -> None:
    store = tree(40)
    state, line = add(None, 0, [], signed_checkpoint(10, store))
    assert state == WitnessState(ORIGIN, 10, root(10, store))
    body = format_checkpoint(ORIGIN, 10, root(10, store))
    assert verify_cosignature(body, line, witness_signer().cosigner_verifier()) == TIME
    state, line = add(state, 10, consistency_proof(10, 40, store), signed_checkpoint(40, store))
    assert (state.size, state.root) == (40, root(40, store))
    state_again, _ = add(state, 40, [], signed_checkpoint(40, store))  # same checkpoint again: re-cosigned
    assert state_again == state


def test_witness_conflict_on_stale_old_size_carries_latest_size() -> None:
    store = tree(40)
    state = WitnessState(ORIGIN, 20, root(20, store))
    with pytest.raises(WitnessConflict) as caught:
        add(state, 10, consistency_proof(10, 40, store), signed_checkpoint(40, store))
    assert caught.value.latest_size == 20
    assert caught.value.status_code == 409
    assert caught.value.response_body() == "20\n"
    with pytest.raises(WitnessConflict) as fresh:
        add(None, 10, consistency_proof(10, 40, store), signed_checkpoint(40, store))
    assert fresh.value.latest_size == 0


def test_witness_rejects_bad_proof_with_422() -> None:
    store = tree(40)
    state = WitnessState(ORIGIN, 10, root(10, store))
    proof = consistency_proof(10, 40, store)
    with pytest.raises(WitnessBadProof) as caught:
        add(state, 10, [*proof[:-1], bytes(32)], signed_checkpoint(40, store))
    assert caught.value.status_code == 422
    with pytest.raises(WitnessBadProof):
        add(state, 10, [], signed_checkpoint(40, store))
    with pytest.raises(WitnessBadProof):
        add(None, 0, proof, signed_checkpoint(40, store))  # proof from size 0 must be empty


def test_witness_refuses_rewritten_history() -> None:
    honest, forked = tree(40), MemoryNodeStore()
    forked.put(append_many(0, [leaf_hash(f"rewritten {i}".encode()) for i in range(40)], forked))
    state = WitnessState(ORIGIN, 10, root(10, honest))
    # The fork's own proof is internally consistent but does not start from the root the witness saw.
    with pytest.raises(WitnessBadProof):
        add(state, 10, consistency_proof(10, 40, forked), signed_checkpoint(40, forked))
    # Same size, different root.
    with pytest.raises(WitnessConflict, match="different root"):
        add(state, 10, [], signed_checkpoint(10, forked))
    # Going backwards: old size above the checkpoint size is a bad request; an honest old size is stale.
    with pytest.raises(WitnessBadRequest) as backwards:
        add(state, 10, [], signed_checkpoint(5, honest))
    assert backwards.value.status_code == 400
    with pytest.raises(WitnessConflict):
        add(state, 5, [], signed_checkpoint(5, honest))


def test_witness_checks_signature_and_origin() -> None:
    store = tree(10)
    with pytest.raises(WitnessForbidden) as forbidden:
        add(None, 0, [], signed_checkpoint(10, store, NoteSigner.generate(ORIGIN)))
    assert forbidden.value.status_code == 403
    other_log = NoteSigner.generate("other.example/log")
    note = sign_note(format_checkpoint("other.example/log", 10, root(10, store)), [other_log])
    with pytest.raises(WitnessUnknownLog) as unknown:
        add(None, 0, [], note)
    assert unknown.value.status_code == 404
    with pytest.raises(WitnessBadRequest):
        add(None, 0, [], "not a note")
    with pytest.raises(WitnessBadRequest, match="63"):
        add(None, 0, [bytes(32)] * 64, signed_checkpoint(10, store))


def test_add_checkpoint_request_round_trip() -> None:
    store = tree(40)
    proof = consistency_proof(10, 40, store)
    note = signed_checkpoint(40, store)
    body = format_add_checkpoint_request(10, proof, note)
    assert body.startswith("old 10\n") and f"\n\n{note}" in body
    assert parse_add_checkpoint_request(body) == (10, proof, note)
    assert parse_add_checkpoint_request(format_add_checkpoint_request(0, [], note)) == (0, [], note)
    for bad in ["old 010\n\n" + note, "new 1\n\n" + note, "old 1\nAAAA\n\n" + note, "old 1\n" + note]:
        with pytest.raises(WitnessBadRequest):
            parse_add_checkpoint_request(bad)


def test_the_example_in_docs_verifies() -> None:
    note = (
        "biobank.example/CN-SH-RJ/audit\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "\u2014 biobank.example/CN-SH-RJ/audit pPivL7yQEhp6yyPDlBUkUgS2fjGHJzgOlT6GIO2PviXWw5gECpLmysHpJFvR"
        "+OxzdMa/pRD4XI/mfRe4N9/50w4PcAQ=\n"
        "\u2014 witness.example/w1 o+1w0QAAAABq/YbA0JglI/0lf9vmA9cFZG+HMJhYtENNuzycItmyI2NkSoT/8QekT1nEIayaDY"
        "Ir0BV++hHNZzI22TWa0iltwaznDg==\n"
    )
    log = NoteVerifier.from_vkey("biobank.example/CN-SH-RJ/audit+a4f8af2f+AUvjVJxmoZnb+DvSm2x4wY2iLXjNAeoBoeY5DcWoU2EX")
    witness = NoteVerifier.from_vkey("witness.example/w1+a3ed70d1+BFSQt4f+DIat0OrehhBO3vaPMyW1+ETfVfPU5rezyGUR")
    body, names = open_note(note, [log, witness])
    assert names == ["biobank.example/CN-SH-RJ/audit", "witness.example/w1"]
    assert verify_cosignature(body, note.splitlines()[-1], witness) == 1795000000
