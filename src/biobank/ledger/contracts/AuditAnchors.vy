# pragma version 0.4.3
"""
@title AuditAnchors
@notice Each institution anchors its audit log's latest checkpoint (size, root); the size only
        grows. Anchorers of other institutions may cosign an anchor they checked.
"""

interface InstitutionRegistry:
    def membership(account: address) -> (bytes32, uint256, bool): view

ANCHORER: constant(uint256) = 16

struct Anchor:
    size: uint256
    root: bytes32
    block_number: uint256
    timestamp: uint256


event Anchored:
    inst: indexed(bytes32)
    size: uint256
    root: bytes32
    index: uint256
    account: indexed(address)

event Cosigned:
    inst: indexed(bytes32)
    size: uint256
    root: bytes32
    cosigner: indexed(bytes32)
    account: indexed(address)


registry: public(address)

_anchors: HashMap[bytes32, HashMap[uint256, Anchor]]
anchor_count: public(HashMap[bytes32, uint256])
_root_of_size: HashMap[bytes32, HashMap[uint256, bytes32]]
cosigned: public(HashMap[bytes32, HashMap[uint256, HashMap[bytes32, bool]]])
cosign_count: public(HashMap[bytes32, HashMap[uint256, uint256]])


@deploy
def __init__(registry: address):
    assert registry != empty(address), "empty registry"
    self.registry = registry


@internal
@view
def _anchorer(account: address) -> bytes32:
    inst: bytes32 = empty(bytes32)
    flags: uint256 = 0
    active: bool = False
    inst, flags, active = staticcall InstitutionRegistry(self.registry).membership(account)
    assert flags & ANCHORER != 0, "not anchorer"
    assert active, "institution suspended"
    return inst


@external
def anchor(size: uint256, root: bytes32):
    """Anchor the caller's institution's checkpoint; size must exceed the last anchored size."""
    inst: bytes32 = self._anchorer(msg.sender)
    assert root != empty(bytes32), "empty root"
    count: uint256 = self.anchor_count[inst]
    if count > 0:
        assert size > self._anchors[inst][count - 1].size, "size must grow"
    else:
        assert size > 0, "size must grow"
    self._anchors[inst][count] = Anchor(
        size=size, root=root, block_number=block.number, timestamp=block.timestamp
    )
    self._root_of_size[inst][size] = root
    self.anchor_count[inst] = count + 1
    log Anchored(inst=inst, size=size, root=root, index=count, account=msg.sender)


@external
def cosign(inst: bytes32, size: uint256, root: bytes32):
    """Vouch, as another institution, that `inst`'s anchor of `size` has `root`."""
    cosigner: bytes32 = self._anchorer(msg.sender)
    assert cosigner != inst, "own institution"
    stored: bytes32 = self._root_of_size[inst][size]
    assert stored != empty(bytes32), "unknown anchor"
    assert stored == root, "root mismatch"
    assert not self.cosigned[inst][size][cosigner], "already cosigned"
    self.cosigned[inst][size][cosigner] = True
    self.cosign_count[inst][size] += 1
    log Cosigned(inst=inst, size=size, root=root, cosigner=cosigner, account=msg.sender)


@external
@view
def latest(inst: bytes32) -> (uint256, bytes32, uint256, uint256):
    """(size, root, block number, timestamp) of the latest anchor; zeros if none."""
    count: uint256 = self.anchor_count[inst]
    if count == 0:
        return 0, empty(bytes32), 0, 0
    a: Anchor = self._anchors[inst][count - 1]
    return a.size, a.root, a.block_number, a.timestamp


@external
@view
def anchor_at(inst: bytes32, index: uint256) -> Anchor:
    """The index-th anchor (0 = first) of an institution."""
    assert index < self.anchor_count[inst], "bad index"
    return self._anchors[inst][index]


@external
@view
def root_at_size(inst: bytes32, size: uint256) -> bytes32:
    """The anchored root of that size (empty if that size was never anchored)."""
    return self._root_of_size[inst][size]
