# pragma version 0.4.3
"""
@title InstitutionRegistry
@notice Who belongs to the consortium: institutions, their role accounts and suspension.
        Deployed first; the other contracts ask it who may do what.
@dev An institution id is keccak256(code). Role flags (keep in step with biobank/ledger/keys.py):
     INSTITUTION_ADMIN=1, BIOBANK_OPERATOR=2, ETHICS_REVIEWER=4, RESEARCHER=8, ANCHORER=16.
     An account belongs to at most one institution. The INSTITUTION_ADMIN flag is held by exactly
     one account per institution and moves only by the two-step institution-admin handover.
"""

INSTITUTION_ADMIN: constant(uint256) = 1
BIOBANK_OPERATOR: constant(uint256) = 2
ETHICS_REVIEWER: constant(uint256) = 4
RESEARCHER: constant(uint256) = 8
ANCHORER: constant(uint256) = 16
ALL_ROLES: constant(uint256) = 31
GRANTABLE_ROLES: constant(uint256) = 30

struct Institution:
    code: String[32]
    admin: address
    pending_admin: address
    active: bool
    registered: bool


event AdminProposed:
    current: indexed(address)
    proposed: indexed(address)

event AdminChanged:
    previous: indexed(address)
    admin: indexed(address)

event InstitutionAdded:
    inst: indexed(bytes32)
    code: String[32]
    admin: indexed(address)

event InstitutionSuspended:
    inst: indexed(bytes32)

event InstitutionReinstated:
    inst: indexed(bytes32)

event RoleGranted:
    inst: indexed(bytes32)
    account: indexed(address)
    roles: uint256
    held: uint256

event RoleRevoked:
    inst: indexed(bytes32)
    account: indexed(address)
    roles: uint256
    held: uint256

event InstitutionAdminProposed:
    inst: indexed(bytes32)
    current: indexed(address)
    proposed: indexed(address)

event InstitutionAdminChanged:
    inst: indexed(bytes32)
    previous: indexed(address)
    admin: indexed(address)

event ContractSet:
    name: String[32]
    addr: indexed(address)


admin: public(address)
pending_admin: public(address)

institutions: public(HashMap[bytes32, Institution])
institution_count: public(uint256)
institution_at: public(HashMap[uint256, bytes32])

# granted flags (without the admin flag, which is derived from institutions[inst].admin)
_granted: HashMap[address, bytes32]
_flags: HashMap[address, uint256]
_contracts: HashMap[String[32], address]


@deploy
def __init__():
    self.admin = msg.sender
    log AdminChanged(previous=empty(address), admin=msg.sender)


# ---------------------------------------------------------------- consortium admin

@external
def propose_admin(proposed: address):
    """Start handing the consortium admin over (empty address cancels)."""
    assert msg.sender == self.admin, "not consortium admin"
    self.pending_admin = proposed
    log AdminProposed(current=msg.sender, proposed=proposed)


@external
def accept_admin():
    """The proposed account takes the consortium admin over."""
    assert self.pending_admin != empty(address), "no pending admin"
    assert msg.sender == self.pending_admin, "not pending admin"
    previous: address = self.admin
    self.admin = msg.sender
    self.pending_admin = empty(address)
    log AdminChanged(previous=previous, admin=msg.sender)


@external
def add_institution(inst: bytes32, code: String[32], admin: address):
    """Register an institution (id = keccak256(code)) with its first institution admin."""
    assert msg.sender == self.admin, "not consortium admin"
    assert len(code) > 0, "empty code"
    assert inst == keccak256(code), "inst is not keccak256(code)"
    assert not self.institutions[inst].registered, "institution exists"
    assert admin != empty(address), "empty admin"
    assert self._granted[admin] == empty(bytes32), "account in another institution"
    self.institutions[inst] = Institution(
        code=code, admin=admin, pending_admin=empty(address), active=True, registered=True
    )
    self.institution_at[self.institution_count] = inst
    self.institution_count += 1
    self._granted[admin] = inst
    log InstitutionAdded(inst=inst, code=code, admin=admin)


@external
def suspend(inst: bytes32):
    """Suspend an institution: its accounts lose every role until reinstated."""
    assert msg.sender == self.admin, "not consortium admin"
    assert self.institutions[inst].registered, "unknown institution"
    assert self.institutions[inst].active, "already suspended"
    self.institutions[inst].active = False
    log InstitutionSuspended(inst=inst)


@external
def reinstate(inst: bytes32):
    """Lift a suspension."""
    assert msg.sender == self.admin, "not consortium admin"
    assert self.institutions[inst].registered, "unknown institution"
    assert not self.institutions[inst].active, "not suspended"
    self.institutions[inst].active = True
    log InstitutionReinstated(inst=inst)


@external
def set_contract(name: String[32], addr: address):
    """Record a sibling contract's address so a joining node needs only the registry."""
    assert msg.sender == self.admin, "not consortium admin"
    assert len(name) > 0, "empty name"
    self._contracts[name] = addr
    log ContractSet(name=name, addr=addr)


# ---------------------------------------------------------------- institution admin

@internal
@view
def _check_institution_admin(inst: bytes32):
    assert self.institutions[inst].registered, "unknown institution"
    assert msg.sender == self.institutions[inst].admin, "not institution admin"


@external
def grant_role(inst: bytes32, account: address, roles: uint256):
    """Give role flags (any of 2|4|8|16) to an account of the caller's institution."""
    self._check_institution_admin(inst)
    assert self.institutions[inst].active, "institution suspended"
    assert roles != 0 and roles & GRANTABLE_ROLES == roles, "bad roles"
    assert account != empty(address), "empty account"
    current: bytes32 = self._granted[account]
    assert current == empty(bytes32) or current == inst, "account in another institution"
    self._granted[account] = inst
    held: uint256 = self._flags[account] | roles
    self._flags[account] = held
    log RoleGranted(inst=inst, account=account, roles=roles, held=held)


@internal
def _release_if_unused(account: address, inst: bytes32):
    if self._flags[account] == 0 and self.institutions[inst].admin != account:
        self._granted[account] = empty(bytes32)


@external
def revoke_role(inst: bytes32, account: address, roles: uint256):
    """Take role flags away; an account left with no role leaves the institution."""
    self._check_institution_admin(inst)
    assert roles != 0 and roles & GRANTABLE_ROLES == roles, "bad roles"
    assert self._granted[account] == inst, "account not in institution"
    held: uint256 = self._flags[account] & (ALL_ROLES ^ roles)
    self._flags[account] = held
    self._release_if_unused(account, inst)
    log RoleRevoked(inst=inst, account=account, roles=roles, held=held)


@external
def propose_institution_admin(inst: bytes32, proposed: address):
    """Start handing the institution admin over (empty address cancels)."""
    self._check_institution_admin(inst)
    if proposed != empty(address):
        current: bytes32 = self._granted[proposed]
        assert current == empty(bytes32) or current == inst, "account in another institution"
    self.institutions[inst].pending_admin = proposed
    log InstitutionAdminProposed(inst=inst, current=msg.sender, proposed=proposed)


@external
def accept_institution_admin(inst: bytes32):
    """The proposed account takes the institution admin over."""
    assert self.institutions[inst].registered, "unknown institution"
    assert self.institutions[inst].pending_admin != empty(address), "no pending admin"
    assert msg.sender == self.institutions[inst].pending_admin, "not pending admin"
    current: bytes32 = self._granted[msg.sender]
    assert current == empty(bytes32) or current == inst, "account in another institution"
    previous: address = self.institutions[inst].admin
    self.institutions[inst].admin = msg.sender
    self.institutions[inst].pending_admin = empty(address)
    self._granted[msg.sender] = inst
    self._release_if_unused(previous, inst)
    log InstitutionAdminChanged(inst=inst, previous=previous, admin=msg.sender)


# ---------------------------------------------------------------- views

@internal
@view
def _roles(account: address) -> uint256:
    inst: bytes32 = self._granted[account]
    if inst == empty(bytes32):
        return 0
    flags: uint256 = self._flags[account]
    if self.institutions[inst].admin == account:
        flags |= INSTITUTION_ADMIN
    return flags


@external
@view
def has_role(account: address, role: uint256) -> bool:
    """True when the account holds every flag of `role` and its institution is active."""
    if role == 0:
        return False
    inst: bytes32 = self._granted[account]
    if inst == empty(bytes32) or not self.institutions[inst].active:
        return False
    return self._roles(account) & role == role


@external
@view
def roles_of(account: address) -> uint256:
    """The account's flags, whether or not its institution is active."""
    return self._roles(account)


@external
@view
def institution_of(account: address) -> bytes32:
    """The institution the account belongs to (empty if none)."""
    return self._granted[account]


@external
@view
def membership(account: address) -> (bytes32, uint256, bool):
    """(institution, flags, institution active) in one call; used by the sibling contracts."""
    inst: bytes32 = self._granted[account]
    return inst, self._roles(account), self.institutions[inst].active


@external
@view
def is_active(inst: bytes32) -> bool:
    """Registered and not suspended."""
    return self.institutions[inst].active


@external
@view
def is_registered(inst: bytes32) -> bool:
    """Registered, suspended or not."""
    return self.institutions[inst].registered


@external
@view
def institution_admin(inst: bytes32) -> address:
    """The institution's admin account."""
    return self.institutions[inst].admin


@external
@view
def contract_address(name: String[32]) -> address:
    """A sibling contract recorded with set_contract (empty if none)."""
    return self._contracts[name]
