# pragma version 0.4.3
"""
@title RevenueLedger
@notice One fee per agreement, split among contributing institutions in basis points; the
        rounding remainder goes explicitly to one of them; institutions withdraw (pull) what they
        were credited. Accounting units, not a currency: nothing here is payable.
"""

interface InstitutionRegistry:
    def membership(account: address) -> (bytes32, uint256, bool): view
    def is_registered(inst: bytes32) -> bool: view

INSTITUTION_ADMIN: constant(uint256) = 1
BIOBANK_OPERATOR: constant(uint256) = 2
MAX_SHARES: constant(uint256) = 32
BPS_TOTAL: constant(uint256) = 10000

struct Fee:
    amount: uint256
    recorder: bytes32
    remainder_to: bytes32
    remainder: uint256
    recorded_at: uint256


event FeeRecorded:
    agreement: indexed(bytes32)
    recorder: indexed(bytes32)
    amount: uint256
    institutions: DynArray[bytes32, MAX_SHARES]
    bps: DynArray[uint16, MAX_SHARES]
    account: address

event Credited:
    agreement: indexed(bytes32)
    inst: indexed(bytes32)
    amount: uint256
    bps: uint16

event RemainderAssigned:
    agreement: indexed(bytes32)
    inst: indexed(bytes32)
    amount: uint256

event Withdrawn:
    inst: indexed(bytes32)
    amount: uint256
    account: indexed(address)


registry: public(address)
fees: public(HashMap[bytes32, Fee])
credit_of: public(HashMap[bytes32, HashMap[bytes32, uint256]])
_balances: HashMap[bytes32, uint256]
withdrawn: public(HashMap[bytes32, uint256])
credited: public(HashMap[bytes32, uint256])
fee_count: public(uint256)


@deploy
def __init__(registry: address):
    assert registry != empty(address), "empty registry"
    self.registry = registry


@external
def record_fee(
    agreement: bytes32,
    amount: uint256,
    institutions: DynArray[bytes32, MAX_SHARES],
    bps: DynArray[uint16, MAX_SHARES],
    remainder_to: bytes32,
):
    """Split `amount` of an agreement's fee: each share amount*bps//10000, the rest to remainder_to."""
    recorder: bytes32 = empty(bytes32)
    flags: uint256 = 0
    active: bool = False
    recorder, flags, active = staticcall InstitutionRegistry(self.registry).membership(msg.sender)
    assert flags & BIOBANK_OPERATOR != 0, "not operator"
    assert active, "institution suspended"
    assert agreement != empty(bytes32), "empty agreement"
    assert self.fees[agreement].recorded_at == 0, "fee exists"
    assert amount > 0, "zero amount"
    assert len(institutions) > 0, "no institutions"
    assert len(institutions) == len(bps), "length mismatch"
    total_bps: uint256 = 0
    remainder_listed: bool = False
    for i: uint256 in range(len(institutions), bound=MAX_SHARES):
        inst: bytes32 = institutions[i]
        assert staticcall InstitutionRegistry(self.registry).is_registered(inst), "unknown institution"
        for j: uint256 in range(i, bound=MAX_SHARES):
            assert institutions[j] != inst, "duplicate institution"
        total_bps += convert(bps[i], uint256)
        if inst == remainder_to:
            remainder_listed = True
    assert total_bps == BPS_TOTAL, "bps must sum to 10000"
    assert remainder_listed, "remainder_to not listed"

    log FeeRecorded(
        agreement=agreement, recorder=recorder, amount=amount, institutions=institutions, bps=bps, account=msg.sender
    )
    distributed: uint256 = 0
    for i: uint256 in range(len(institutions), bound=MAX_SHARES):
        share: uint256 = amount * convert(bps[i], uint256) // BPS_TOTAL
        distributed += share
        self.credit_of[agreement][institutions[i]] = share
        self._balances[institutions[i]] += share
        self.credited[institutions[i]] += share
        log Credited(agreement=agreement, inst=institutions[i], amount=share, bps=bps[i])
    remainder: uint256 = amount - distributed
    self.credit_of[agreement][remainder_to] += remainder
    self._balances[remainder_to] += remainder
    self.credited[remainder_to] += remainder
    log RemainderAssigned(agreement=agreement, inst=remainder_to, amount=remainder)
    self.fees[agreement] = Fee(
        amount=amount, recorder=recorder, remainder_to=remainder_to, remainder=remainder, recorded_at=block.timestamp
    )
    self.fee_count += 1


@external
def withdraw(inst: bytes32, amount: uint256):
    """The institution's admin withdraws (books out) part of its balance."""
    member: bytes32 = empty(bytes32)
    flags: uint256 = 0
    active: bool = False
    member, flags, active = staticcall InstitutionRegistry(self.registry).membership(msg.sender)
    assert member == inst and inst != empty(bytes32) and flags & INSTITUTION_ADMIN != 0, "not institution admin"
    assert active, "institution suspended"
    assert amount > 0, "zero amount"
    assert amount <= self._balances[inst], "insufficient balance"
    self._balances[inst] -= amount
    self.withdrawn[inst] += amount
    log Withdrawn(inst=inst, amount=amount, account=msg.sender)


@external
@view
def balance_of(inst: bytes32) -> uint256:
    """Credited and not yet withdrawn."""
    return self._balances[inst]
