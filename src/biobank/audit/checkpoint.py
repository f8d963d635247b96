"""C2SP signed notes, tlog-checkpoint bodies, tlog-cosignature/v1 and the tlog-witness add-checkpoint rules.

Specs: c2sp.org/signed-note, c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature (Ed25519
``cosignature/v1``), c2sp.org/tlog-witness. Pure functions over text; no storage, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from biobank.audit.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from biobank.kit.errors import BiobankError

SIG_ED25519 = 0x01
"""signed-note signature type of plain Ed25519 note signatures."""
SIG_COSIGNATURE_V1 = 0x04
"""signed-note signature type of timestamped Ed25519 witness cosignatures (tlog-cosignature)."""

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 64  # the spec requires accepting at least 16
MAX_PROOF_LINES = 63  # tlog-witness: clients MUST NOT send more
MAX_TIMESTAMP = 2**63 - 1
PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"

_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX_RE = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A signed note that cannot be accepted."""


class MalformedNote(NoteError):
    """Text that is not a well-formed signed note (or key string)."""


class BadSignature(NoteError):
    """A signature from a known key that does not verify: the whole note is rejected."""


class UnverifiedNote(NoteError):
    """No signature from a known key verified."""


class MalformedCheckpoint(ValueError):
    """A note body that is not a C2SP checkpoint."""


# --- checkpoints -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size and RFC 6962 root hash (plus opaque extension lines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The checkpoint note text."""
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def _check_line(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise MalformedCheckpoint(f"{what} must be a non-empty string")
    if "\n" in value or _CONTROL_RE.search(value):
        raise MalformedCheckpoint(f"{what} must be one line without control characters")


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """The C2SP checkpoint body: origin, decimal size, base64 root, each line ending in a newline."""
    _check_line("origin", origin)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MalformedCheckpoint("tree size must be a non-negative integer")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise MalformedCheckpoint(f"root hash must be {HASH_SIZE} bytes")
    for line in extensions:
        _check_line("extension line", line)
    lines = [origin, str(size), base64.b64encode(root).decode("ascii"), *extensions]
    return "".join(line + "\n" for line in lines)


def _b64decode_strict(text: str, what: str, error: type[ValueError]) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise error(f"{what} is not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64")
    return raw


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (the text of a verified note); extension lines are kept, not interpreted."""
    if not isinstance(body, str) or not body.endswith("\n"):
        raise MalformedCheckpoint("checkpoint text must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint("checkpoint needs three lines: origin, tree size, root hash")
    origin, size_text, root_text, *extensions = lines
    _check_line("origin", origin)
    for line in extensions:
        _check_line("extension line", line)
    if not _SIZE_RE.fullmatch(size_text):
        raise MalformedCheckpoint("tree size must be decimal digits without leading zeroes")
    root = _b64decode_strict(root_text, "root hash", MalformedCheckpoint)
    if len(root) != HASH_SIZE:
        raise MalformedCheckpoint(f"root hash must be {HASH_SIZE} bytes, got {len(root)}")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# --- keys ------------------------------------------------------------------------------------------------


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid note key name: non-empty, no spaces, no '+', no controls."""
    if not isinstance(name, str) or not name:
        raise MalformedNote("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name) or _CONTROL_RE.search(name):
        raise MalformedNote("key name must not contain spaces, '+' or control characters")
    return name


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """signed-note key ID: SHA-256(name || 0x0A || signature type || public key)[:4]."""
    data = check_key_name(name).encode("utf-8") + b"\n" + bytes([sig_type]) + public_key
    return hashlib.sha256(data).digest()[:4]


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted public key: Ed25519 note signatures (0x01) or Ed25519 cosignatures (0x04)."""

    name: str
    public_key: bytes
    sig_type: int = SIG_ED25519
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if self.sig_type not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise MalformedNote(f"unsupported signature type 0x{self.sig_type:02x}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise MalformedNote("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return key_id(self.name, self.sig_type, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key ``<name>+<hex8 key id>+<base64(type || public key)>``."""
        parts = vkey.strip().split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3 or not _KEY_ID_HEX_RE.fullmatch(parts[1]):
            raise MalformedNote("verifier key must be <name>+<8 hex digits>+<base64 key>")
        name, id_hex, material_b64 = parts
        material = _b64decode_strict(material_b64, "verifier key", MalformedNote)
        if len(material) != 33:
            raise MalformedNote("verifier key material must be a type byte and a 32-byte Ed25519 key")
        verifier = cls(name, material[1:], material[0])
        if verifier.key_id.hex() != id_hex:
            raise MalformedNote("verifier key ID does not match its name and key")
        return verifier

    def vkey(self) -> str:
        """This key as a verifier key string."""
        material = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def cosignature_timestamp(self, text: str, signature: bytes) -> int | None:
        """The timestamp of a valid cosignature/v1 over ``text``, or None if it does not verify."""
        if self.sig_type != SIG_COSIGNATURE_V1 or len(signature) != 8 + 64:
            return None
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return None
        try:
            self._key.verify(signature[8:], _cosigned_message(text, timestamp))
        except InvalidSignature:
            return None
        return timestamp

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID) is valid for the note text under this key."""
        if self.sig_type == SIG_COSIGNATURE_V1:
            return self.cosignature_timestamp(text, signature) is not None
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, text.encode("utf-8"))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """A named Ed25519 private key that signs notes (type 0x01) and cosigns checkpoints (type 0x04)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self.private_key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        """Key ID of this key's plain note signatures (type 0x01)."""
        return key_id(self.name, SIG_ED25519, self.public_key)

    def verifier(self) -> NoteVerifier:
        """The verifier of this key's note signatures."""
        return NoteVerifier(self.name, self.public_key, SIG_ED25519)

    def cosigner_verifier(self) -> NoteVerifier:
        """The verifier of this key's cosignatures."""
        return NoteVerifier(self.name, self.public_key, SIG_COSIGNATURE_V1)

    def vkey(self) -> str:
        """Verifier key string for note signatures (give it to whoever must trust this log)."""
        return self.verifier().vkey()

    def cosigner_vkey(self) -> str:
        """Verifier key string for cosignatures (give it to whoever must trust this witness)."""
        return self.cosigner_verifier().vkey()

    def sign(self, body: str) -> str:
        """One signature line ``— <name> <base64(key id || signature)>`` (newline included)."""
        _check_note_text(body)
        signature = self.private_key.sign(body.encode("utf-8"))
        return _signature_line(self.name, self.key_id + signature)

    def to_skey(self) -> str:
        """The private key in signed-note form ``PRIVATE+KEY+<name>+<hex8 id>+<base64(0x01 || seed)>``."""
        seed = self.private_key.private_bytes_raw()
        material = base64.b64encode(bytes([SIG_ED25519]) + seed).decode("ascii")
        return f"{PRIVATE_KEY_PREFIX}{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse a signed-note private key (type 0x01, or 0x04 as written by cosigner tools)."""
        if not isinstance(skey, str) or not skey.startswith(PRIVATE_KEY_PREFIX):
            raise MalformedNote(f"private key must start with {PRIVATE_KEY_PREFIX}")
        parts = skey.strip()[len(PRIVATE_KEY_PREFIX) :].split("+", 2)
        if len(parts) != 3 or not _KEY_ID_HEX_RE.fullmatch(parts[1]):
            raise MalformedNote("private key must be PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")
        name, id_hex, material_b64 = parts
        material = _b64decode_strict(material_b64, "private key", MalformedNote)
        if len(material) != 33 or material[0] not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise MalformedNote("private key material must be a type byte (0x01 or 0x04) and a 32-byte seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(material[1:]))
        if key_id(name, material[0], signer.public_key).hex() != id_hex:
            raise MalformedNote("private key ID does not match its name and key")
        return signer


def _signature_line(name: str, signature: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(signature).decode('ascii')}\n"


def _check_note_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise MalformedNote("note text must be a string ending with a newline")
    if _CONTROL_RE.search(text):
        raise MalformedNote("note text must not contain control characters other than newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedNote("note text is not valid Unicode") from None


# --- notes -----------------------------------------------------------------------------------------------


def sign_note(body: str, signers: Sequence[NoteSigner]) -> str:
    """A signed note: the text, a blank line, then one signature line per signer."""
    if not signers:
        raise ValueError("a signed note needs at least one signer")
    return body + "\n" + "".join(signer.sign(body) for signer in signers)


def _split_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """Note text and its (key name, base64-decoded signature) pairs, or MalformedNote."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNote("signed note is not valid UTF-8") from None
    if not isinstance(note, str):
        raise MalformedNote("signed note must be text")
    if _CONTROL_RE.search(note):
        raise MalformedNote("signed note must not contain control characters other than newline")
    if not note.endswith("\n"):
        raise MalformedNote("signed note must end with a newline")
    separator = note.rfind("\n\n")
    if separator < 0:
        raise MalformedNote("signed note has no blank line before its signatures")
    text, block = note[: separator + 1], note[separator + 2 :]
    if not block:
        raise MalformedNote("signed note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"signed note has more than {MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes]] = []
    for number, line in enumerate(lines, start=1):
        parts = line[len(SIGNATURE_PREFIX) :].split(" ") if line.startswith(SIGNATURE_PREFIX) else []
        if len(parts) != 2:
            raise MalformedNote(f"signature line {number} is not '— <key name> <base64 signature>'")
        name, encoded = parts
        check_key_name(name)
        signature = _b64decode_strict(encoded, f"signature line {number}", MalformedNote)
        if len(signature) < 5:
            raise MalformedNote(f"signature line {number} is too short")
        signatures.append((name, signature))
    return text, signatures


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a signed note; returns its text and the names of known keys whose signatures verified.

    Signatures from unknown (name, key ID) pairs are ignored. A known key's bad signature raises
    BadSignature; no verified known signature raises UnverifiedNote; bad syntax raises MalformedNote.
    """
    text, signatures = _split_note(note)
    by_id = {(v.name, v.key_id): v for v in verifiers}
    verified: list[str] = []
    for name, signature in signatures:
        verifier = by_id.get((name, signature[:4]))
        if verifier is None:
            continue
        if not verifier.verify(text, signature[4:]):
            raise BadSignature(f"the signature of known key {name} does not verify")
        if name not in verified:
            verified.append(name)
    if not verified:
        raise UnverifiedNote("the note carries no signature from a known key")
    return text, verified


def cosign(checkpoint_body: str, witness_signer: NoteSigner, timestamp: int) -> str:
    """A tlog-cosignature/v1 line over a checkpoint body at ``timestamp`` (POSIX seconds)."""
    _check_note_text(checkpoint_body)
    parse_checkpoint(checkpoint_body)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("cosignature timestamp must be an integer in [0, 2**63 - 1]")
    signature = witness_signer.private_key.sign(_cosigned_message(checkpoint_body, timestamp))
    kid = key_id(witness_signer.name, SIG_COSIGNATURE_V1, witness_signer.public_key)
    return _signature_line(witness_signer.name, kid + timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(checkpoint_body: str, signature_line: str, verifier: NoteVerifier) -> int:
    """Check one cosignature line from ``verifier`` (type 0x04) over a checkpoint; returns its timestamp."""
    if verifier.sig_type != SIG_COSIGNATURE_V1:
        raise ValueError("verify_cosignature needs a cosignature (type 0x04) verifier")
    line = signature_line if signature_line.endswith("\n") else signature_line + "\n"
    _, signatures = _split_note(checkpoint_body + "\n" + line)
    if len(signatures) != 1:
        raise MalformedNote("expected exactly one signature line")
    name, signature = signatures[0]
    if (name, signature[:4]) != (verifier.name, verifier.key_id):
        raise UnverifiedNote(f"the line is not a cosignature by {verifier.name}")
    timestamp = verifier.cosignature_timestamp(checkpoint_body, signature[4:])
    if timestamp is None:
        raise BadSignature(f"the cosignature of {name} does not verify")
    return timestamp


# --- key files ---------------------------------------------------------------------------------------


def generate_key_file(path: str | os.PathLike[str], name: str) -> NoteSigner:
    """Create a new Ed25519 key in signed-note private-key form, mode 0600; never overwrites a file."""
    signer = NoteSigner.generate(name)
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FileExistsError(f"refusing to overwrite existing key file {target}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (signer.to_skey() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return signer


def load_signer(path: str | os.PathLike[str]) -> NoteSigner:
    """Read a key file written by generate_key_file (or any signed-note Ed25519 private key)."""
    text = Path(path).read_text(encoding="ascii").strip()
    return NoteSigner.from_skey(text)


# --- witness -----------------------------------------------------------------------------------------


class WitnessError(BiobankError):
    """A tlog-witness add-checkpoint request the witness refuses."""

    status_code = 400
    default_name = "WitnessBadRequest"


class WitnessBadRequest(WitnessError):
    """Malformed request, old size above the checkpoint size, or too many proof lines (400)."""


class WitnessForbidden(WitnessError):
    """No trusted log signature verifies on the checkpoint (403)."""

    status_code = 403
    default_name = "WitnessForbidden"


class WitnessUnknownLog(WitnessError):
    """The checkpoint's origin is not a log this witness follows (404)."""

    status_code = 404
    default_name = "WitnessUnknownLog"


class WitnessConflict(WitnessError):
    """Old size differs from the witness's latest size, or same size with another root (409)."""

    status_code = 409
    default_name = "WitnessConflict"

    def __init__(self, detail: str, *, latest_size: int) -> None:
        super().__init__(detail)
        self.latest_size = latest_size

    def response_body(self) -> str:
        """tlog-witness 409 body (Content-Type text/x.tlog.size): the latest size and a newline."""
        return f"{self.latest_size}\n"


class WitnessBadProof(WitnessError):
    """The consistency proof does not verify (422)."""

    status_code = 422
    default_name = "WitnessBadProof"


@dataclass(frozen=True)
class WitnessState:
    """The latest checkpoint a witness cosigned for one log."""

    origin: str
    size: int
    root: bytes


def witness_add_checkpoint(
    state: WitnessState | None,
    old_size: int,
    consistency_proof: Sequence[bytes],
    signed_note: str,
    log_verifier: NoteVerifier | Sequence[NoteVerifier],
    *,
    witness_signer: NoteSigner,
    timestamp: int,
    origin: str | None = None,
) -> tuple[WitnessState, str]:
    """tlog-witness add-checkpoint: check the request against ``state``; return new state and cosignature.

    ``origin`` defaults to the log key's name. The caller must persist the new state atomically with
    the check (compare-and-swap on the old size) before returning the cosignature.
    """
    verifiers = [log_verifier] if isinstance(log_verifier, NoteVerifier) else list(log_verifier)
    if not verifiers:
        raise ValueError("the witness needs at least one log key")
    expected_origin = origin if origin is not None else verifiers[0].name
    if state is not None and state.origin != expected_origin:
        raise ValueError("witness state belongs to another log")
    if isinstance(old_size, bool) or not isinstance(old_size, int) or old_size < 0:
        raise WitnessBadRequest("old size must be a non-negative integer")
    if len(consistency_proof) > MAX_PROOF_LINES:
        raise WitnessBadRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")

    try:
        unverified_text, _ = _split_note(signed_note)
    except MalformedNote as exc:
        raise WitnessBadRequest(str(exc)) from None
    if unverified_text.split("\n", 1)[0] != expected_origin:
        raise WitnessUnknownLog("this witness does not follow the checkpoint's origin")
    try:
        text, _ = open_note(signed_note, verifiers)
    except (BadSignature, UnverifiedNote) as exc:
        raise WitnessForbidden(str(exc)) from None
    try:
        checkpoint = parse_checkpoint(text)
    except MalformedCheckpoint as exc:
        raise WitnessBadRequest(str(exc)) from None

    if old_size > checkpoint.size:
        raise WitnessBadRequest(f"old size {old_size} is larger than the checkpoint size {checkpoint.size}")
    latest = state.size if state is not None else 0
    if old_size != latest:
        raise WitnessConflict(f"old size {old_size} is not the latest cosigned size", latest_size=latest)
    proof = list(consistency_proof)
    if old_size == checkpoint.size and state is not None:
        if checkpoint.root != state.root:
            raise WitnessConflict("same tree size with a different root hash", latest_size=latest)
        if proof:
            raise WitnessBadProof("a proof between equal sizes must be empty")
    elif old_size == 0:
        if proof:
            raise WitnessBadProof("the proof from size 0 must be empty")
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            raise WitnessBadProof("an empty tree's root must be SHA-256 of the empty string")
    elif state is None or not verify_consistency(old_size, checkpoint.size, state.root, checkpoint.root, proof):
        raise WitnessBadProof(f"consistency proof from size {old_size} to {checkpoint.size} does not verify")

    new_state = WitnessState(checkpoint.origin, checkpoint.size, checkpoint.root)
    return new_state, cosign(text, witness_signer, timestamp)


def format_add_checkpoint_request(old_size: int, consistency_proof: Sequence[bytes], signed_note: str) -> str:
    """The body of a tlog-witness add-checkpoint POST."""
    proof_lines = "".join(base64.b64encode(h).decode("ascii") + "\n" for h in consistency_proof)
    return f"old {old_size}\n{proof_lines}\n{signed_note}"


def parse_add_checkpoint_request(body: str) -> tuple[int, list[bytes], str]:
    """Split an add-checkpoint POST body into (old size, proof, signed note); 400 on bad syntax."""
    head, sep, note = body.partition("\n\n") if isinstance(body, str) else ("", "", "")
    if not sep:
        raise WitnessBadRequest("request needs an old size line, proof lines, a blank line and a checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old ") or not _SIZE_RE.fullmatch(lines[0][4:]):
        raise WitnessBadRequest("the first line must be 'old <size>' in decimal without leading zeroes")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessBadRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
    try:
        proof = [_b64decode_strict(line, "proof line", MalformedNote) for line in lines[1:]]
    except MalformedNote as exc:
        raise WitnessBadRequest(str(exc)) from None
    if any(len(h) != HASH_SIZE for h in proof):
        raise WitnessBadRequest(f"each proof line must encode a {HASH_SIZE}-byte hash")
    return int(lines[0][4:]), proof, note
