# pragma version 0.4.3
"""
@title ResourceRegistry
@notice Salted commitments of each institution's published catalogue records (collections,
        datasets), with versions: who contributed what, and when.
@dev The first publisher's institution owns a resource; only its biobank operators publish
     later versions or retire it. Versions count up from 1.
"""

interface InstitutionRegistry:
    def membership(account: address) -> (bytes32, uint256, bool): view

BIOBANK_OPERATOR: constant(uint256) = 2

struct Resource:
    owner: bytes32
    version: uint256
    retired: bool

struct Version:
    commitment: bytes32
    publisher: address
    timestamp: uint256


event Published:
    resource: indexed(bytes32)
    owner: indexed(bytes32)
    version: uint256
    commitment: bytes32
    account: address

event Retired:
    resource: indexed(bytes32)
    owner: indexed(bytes32)
    version: uint256
    account: address


registry: public(address)
resource_count: public(uint256)
_resources: HashMap[bytes32, Resource]
_versions: HashMap[bytes32, HashMap[uint256, Version]]


@deploy
def __init__(registry: address):
    assert registry != empty(address), "empty registry"
    self.registry = registry


@internal
@view
def _operator_inst(account: address) -> bytes32:
    inst: bytes32 = empty(bytes32)
    flags: uint256 = 0
    active: bool = False
    inst, flags, active = staticcall InstitutionRegistry(self.registry).membership(account)
    assert flags & BIOBANK_OPERATOR != 0, "not operator"
    assert active, "institution suspended"
    return inst


@external
def publish(resource: bytes32, commitment: bytes32):
    """Publish the first or a new version of a resource's commitment."""
    inst: bytes32 = self._operator_inst(msg.sender)
    assert resource != empty(bytes32), "empty resource"
    assert commitment != empty(bytes32), "empty commitment"
    res: Resource = self._resources[resource]
    if res.owner == empty(bytes32):
        res.owner = inst
        self.resource_count += 1
    else:
        assert res.owner == inst, "not owner"
        assert not res.retired, "retired"
    res.version += 1
    self._resources[resource] = res
    self._versions[resource][res.version] = Version(
        commitment=commitment, publisher=msg.sender, timestamp=block.timestamp
    )
    log Published(resource=resource, owner=inst, version=res.version, commitment=commitment, account=msg.sender)


@external
def retire(resource: bytes32):
    """The owner withdraws a resource from the catalogue; its history stays."""
    inst: bytes32 = self._operator_inst(msg.sender)
    res: Resource = self._resources[resource]
    assert res.owner != empty(bytes32), "unknown resource"
    assert res.owner == inst, "not owner"
    assert not res.retired, "retired"
    self._resources[resource].retired = True
    log Retired(resource=resource, owner=inst, version=res.version, account=msg.sender)


@external
@view
def latest(resource: bytes32) -> (bytes32, uint256, bytes32, bool):
    """(owner institution, version, commitment, retired); zeros if unknown."""
    res: Resource = self._resources[resource]
    return res.owner, res.version, self._versions[resource][res.version].commitment, res.retired


@external
@view
def commitment_at(resource: bytes32, version: uint256) -> bytes32:
    """The commitment of one version (1-based)."""
    assert version > 0 and version <= self._resources[resource].version, "bad version"
    return self._versions[resource][version].commitment


@external
@view
def version_at(resource: bytes32, version: uint256) -> Version:
    """(commitment, publishing account, timestamp) of one version (1-based)."""
    assert version > 0 and version <= self._resources[resource].version, "bad version"
    return self._versions[resource][version]
