# pragma version 0.4.3
"""
@title AccessAgreements
@notice A sample/data access request's life on chain: submitted, ethics decision, per-provider
        decisions, agreement (terms hash + both EIP-191 signatures), fulfilment (dispatched,
        received, data access until a time), results, closed / revoked / expired.
@dev Request states: SUBMITTED=1, APPROVED=2, REJECTED=3, CLOSED=4, EXPIRED=5.
     Provider track states: PENDING=1, AVAILABLE=2, UNAVAILABLE=3, AGREED=4, REVOKED=5.
     A request expires (anyone may call expire) once its deadline, set at submit to
     block.timestamp + expiry_window, has passed without any agreement.
"""

interface InstitutionRegistry:
    def membership(account: address) -> (bytes32, uint256, bool): view
    def is_active(inst: bytes32) -> bool: view
    def admin() -> address: view

BIOBANK_OPERATOR: constant(uint256) = 2
ETHICS_REVIEWER: constant(uint256) = 4
RESEARCHER: constant(uint256) = 8

SUBMITTED: constant(uint8) = 1
APPROVED: constant(uint8) = 2
REJECTED: constant(uint8) = 3
CLOSED: constant(uint8) = 4
EXPIRED: constant(uint8) = 5

PENDING: constant(uint8) = 1
AVAILABLE: constant(uint8) = 2
UNAVAILABLE: constant(uint8) = 3
AGREED: constant(uint8) = 4
REVOKED: constant(uint8) = 5

MAX_PROVIDERS: constant(uint256) = 32
DEFAULT_EXPIRY_WINDOW: constant(uint256) = 180 * 86400
# secp256k1 order / 2: signatures with a larger s are the malleable twin and are refused
SECP256K1N_HALF: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

struct Request:
    requester: bytes32
    ethics: bytes32
    commitment: bytes32
    state: uint8
    submitted_by: address
    submitted_at: uint256
    deadline: uint256
    decision_hash: bytes32
    agreements: uint256
    results_count: uint256
    results_hash: bytes32

struct Track:
    state: uint8
    terms_hash: bytes32
    requester_signer: address
    provider_signer: address
    shipment_hash: bytes32
    dispatched_at: uint256
    condition_hash: bytes32
    received_at: uint256
    data_until: uint256
    reason_hash: bytes32


event Submitted:
    request: indexed(bytes32)
    requester: indexed(bytes32)
    ethics: bytes32
    commitment: bytes32
    providers: DynArray[bytes32, MAX_PROVIDERS]
    deadline: uint256
    account: address

event EthicsDecided:
    request: indexed(bytes32)
    ethics: indexed(bytes32)
    approved: bool
    decision_hash: bytes32
    account: address

event ProviderDecided:
    request: indexed(bytes32)
    provider: indexed(bytes32)
    available: bool
    account: address

event AgreementRecorded:
    request: indexed(bytes32)
    provider: indexed(bytes32)
    terms_hash: bytes32
    requester_signer: address
    provider_signer: address
    account: address

event Dispatched:
    request: indexed(bytes32)
    provider: indexed(bytes32)
    shipment_hash: bytes32
    account: address

event Received:
    request: indexed(bytes32)
    provider: indexed(bytes32)
    condition_hash: bytes32
    account: address

event DataAccessGranted:
    request: indexed(bytes32)
    provider: indexed(bytes32)
    until: uint256
    account: address

event ResultsReturned:
    request: indexed(bytes32)
    results_hash: bytes32
    index: uint256
    account: address

event Closed:
    request: indexed(bytes32)
    account: address

event Revoked:
    request: indexed(bytes32)
    provider: indexed(bytes32)
    reason_hash: bytes32
    account: address

event Expired:
    request: indexed(bytes32)
    account: address

event ExpiryWindowSet:
    seconds: uint256


registry: public(address)
expiry_window: public(uint256)
requests: public(HashMap[bytes32, Request])
tracks: public(HashMap[bytes32, HashMap[bytes32, Track]])
_providers: HashMap[bytes32, DynArray[bytes32, MAX_PROVIDERS]]


@deploy
def __init__(registry: address):
    assert registry != empty(address), "empty registry"
    self.registry = registry
    self.expiry_window = DEFAULT_EXPIRY_WINDOW


# ---------------------------------------------------------------- helpers

@internal
@view
def _holds(account: address, role: uint256, inst: bytes32) -> (bool, bool):
    """(account holds `role` in `inst`, its institution is active)."""
    member: bytes32 = empty(bytes32)
    flags: uint256 = 0
    active: bool = False
    member, flags, active = staticcall InstitutionRegistry(self.registry).membership(account)
    return inst != empty(bytes32) and member == inst and flags & role != 0, active


@internal
@view
def _active(inst: bytes32) -> bool:
    return staticcall InstitutionRegistry(self.registry).is_active(inst)


@internal
@view
def _request(request: bytes32) -> Request:
    r: Request = self.requests[request]
    assert r.state != 0, "unknown request"
    return r


@internal
@view
def _track(request: bytes32, provider: bytes32) -> Track:
    t: Track = self.tracks[request][provider]
    assert t.state != 0, "not a provider"
    return t


@internal
@view
def _check_provider_operator(provider: bytes32):
    holds: bool = False
    active: bool = False
    holds, active = self._holds(msg.sender, BIOBANK_OPERATOR, provider)
    assert holds, "not provider operator"
    assert active, "institution suspended"


@internal
@view
def _check_requester_researcher(requester: bytes32):
    holds: bool = False
    active: bool = False
    holds, active = self._holds(msg.sender, RESEARCHER, requester)
    assert holds, "not requester researcher"
    assert active, "institution suspended"


@internal
@pure
def _recover(digest: bytes32, sig: Bytes[65]) -> address:
    if len(sig) != 65:
        return empty(address)
    r: uint256 = convert(extract32(sig, 0), uint256)
    s: uint256 = convert(extract32(sig, 32), uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    if v < 27:
        v += 27
    if v != 27 and v != 28:
        return empty(address)
    if s == 0 or s > SECP256K1N_HALF:
        return empty(address)
    return ecrecover(digest, v, r, s)


@external
@pure
def eip191_digest(digest: bytes32) -> bytes32:
    """The EIP-191 (personal_sign) hash of a 32-byte digest: what the parties sign."""
    return keccak256(concat(b"\x19Ethereum Signed Message:\n32", digest))


# ---------------------------------------------------------------- consortium admin

@external
def set_expiry_window(seconds: uint256):
    """How long a request may go without an agreement before anyone may expire it (new requests)."""
    assert msg.sender == staticcall InstitutionRegistry(self.registry).admin(), "not consortium admin"
    assert seconds > 0, "bad window"
    self.expiry_window = seconds
    log ExpiryWindowSet(seconds=seconds)


# ---------------------------------------------------------------- transitions

@external
def submit(
    request: bytes32,
    commitment: bytes32,
    providers: DynArray[bytes32, MAX_PROVIDERS],
    ethics_inst: bytes32,
):
    """A researcher submits a request to providers, to be reviewed by ethics_inst."""
    member: bytes32 = empty(bytes32)
    flags: uint256 = 0
    active: bool = False
    member, flags, active = staticcall InstitutionRegistry(self.registry).membership(msg.sender)
    assert flags & RESEARCHER != 0, "not researcher"
    assert active, "institution suspended"
    assert request != empty(bytes32), "empty request"
    assert self.requests[request].state == 0, "request exists"
    assert commitment != empty(bytes32), "empty commitment"
    assert len(providers) > 0, "no providers"
    assert self._active(ethics_inst), "ethics institution not active"
    for p: bytes32 in providers:
        assert self._active(p), "provider not active"
        assert self.tracks[request][p].state == 0, "duplicate provider"
        self.tracks[request][p].state = PENDING
    self._providers[request] = providers
    deadline: uint256 = block.timestamp + self.expiry_window
    self.requests[request] = Request(
        requester=member,
        ethics=ethics_inst,
        commitment=commitment,
        state=SUBMITTED,
        submitted_by=msg.sender,
        submitted_at=block.timestamp,
        deadline=deadline,
        decision_hash=empty(bytes32),
        agreements=0,
        results_count=0,
        results_hash=empty(bytes32),
    )
    log Submitted(
        request=request,
        requester=member,
        ethics=ethics_inst,
        commitment=commitment,
        providers=providers,
        deadline=deadline,
        account=msg.sender,
    )


@external
def decide_ethics(request: bytes32, approved: bool, decision_hash: bytes32):
    """An ethics reviewer of the request's ethics institution approves or rejects it."""
    r: Request = self._request(request)
    holds: bool = False
    active: bool = False
    holds, active = self._holds(msg.sender, ETHICS_REVIEWER, r.ethics)
    assert holds, "not ethics reviewer"
    assert active, "institution suspended"
    assert r.state == SUBMITTED, "bad state"
    assert block.timestamp < r.deadline, "past deadline"
    assert decision_hash != empty(bytes32), "empty decision"
    new_state: uint8 = REJECTED
    if approved:
        new_state = APPROVED
    self.requests[request].state = new_state
    self.requests[request].decision_hash = decision_hash
    log EthicsDecided(
        request=request, ethics=r.ethics, approved=approved, decision_hash=decision_hash, account=msg.sender
    )


@external
def decide_provider(request: bytes32, provider: bytes32, available: bool):
    """A provider's biobank operator says whether it can supply the request (after ethics approval)."""
    r: Request = self._request(request)
    t: Track = self._track(request, provider)
    self._check_provider_operator(provider)
    assert r.state == APPROVED, "bad state"
    assert t.state == PENDING, "bad state"
    assert block.timestamp < r.deadline, "past deadline"
    new_state: uint8 = UNAVAILABLE
    if available:
        new_state = AVAILABLE
    self.tracks[request][provider].state = new_state
    log ProviderDecided(request=request, provider=provider, available=available, account=msg.sender)


@external
def record_agreement(
    request: bytes32,
    provider: bytes32,
    terms_hash: bytes32,
    requester_sig: Bytes[65],
    provider_sig: Bytes[65],
):
    """Record the MTA/DTA terms hash signed (EIP-191) by a requester researcher and a provider operator."""
    r: Request = self._request(request)
    t: Track = self._track(request, provider)
    as_requester: bool = False
    as_provider: bool = False
    active: bool = False
    as_requester, active = self._holds(msg.sender, RESEARCHER, r.requester)
    as_provider, active = self._holds(msg.sender, BIOBANK_OPERATOR, provider)
    assert as_requester or as_provider, "not a party"
    assert self._active(r.requester), "requester suspended"
    assert self._active(provider), "provider suspended"
    assert r.state == APPROVED, "bad state"
    assert t.state == AVAILABLE, "bad state"
    assert block.timestamp < r.deadline, "past deadline"
    assert terms_hash != empty(bytes32), "empty terms"
    digest: bytes32 = keccak256(concat(b"\x19Ethereum Signed Message:\n32", terms_hash))
    requester_signer: address = self._recover(digest, requester_sig)
    holds: bool = False
    holds, active = self._holds(requester_signer, RESEARCHER, r.requester)
    assert requester_signer != empty(address) and holds, "bad requester signature"
    provider_signer: address = self._recover(digest, provider_sig)
    holds, active = self._holds(provider_signer, BIOBANK_OPERATOR, provider)
    assert provider_signer != empty(address) and holds, "bad provider signature"
    self.tracks[request][provider].state = AGREED
    self.tracks[request][provider].terms_hash = terms_hash
    self.tracks[request][provider].requester_signer = requester_signer
    self.tracks[request][provider].provider_signer = provider_signer
    self.requests[request].agreements = r.agreements + 1
    log AgreementRecorded(
        request=request,
        provider=provider,
        terms_hash=terms_hash,
        requester_signer=requester_signer,
        provider_signer=provider_signer,
        account=msg.sender,
    )


@external
def dispatch(request: bytes32, provider: bytes32, shipment_hash: bytes32):
    """The provider records the (single) shipment of its agreed specimens."""
    r: Request = self._request(request)
    t: Track = self._track(request, provider)
    self._check_provider_operator(provider)
    assert self._active(r.requester), "requester suspended"
    assert r.state == APPROVED, "bad state"
    assert t.state == AGREED, "bad state"
    assert t.dispatched_at == 0, "already dispatched"
    assert shipment_hash != empty(bytes32), "empty shipment"
    self.tracks[request][provider].shipment_hash = shipment_hash
    self.tracks[request][provider].dispatched_at = block.timestamp
    log Dispatched(request=request, provider=provider, shipment_hash=shipment_hash, account=msg.sender)


@external
def receive(request: bytes32, provider: bytes32, condition_hash: bytes32):
    """A requester researcher confirms receipt of the provider's shipment and its condition."""
    r: Request = self._request(request)
    t: Track = self._track(request, provider)
    self._check_requester_researcher(r.requester)
    assert r.state == APPROVED, "bad state"
    assert t.state == AGREED, "bad state"
    assert t.dispatched_at != 0, "not dispatched"
    assert t.received_at == 0, "already received"
    assert condition_hash != empty(bytes32), "empty condition"
    self.tracks[request][provider].condition_hash = condition_hash
    self.tracks[request][provider].received_at = block.timestamp
    log Received(request=request, provider=provider, condition_hash=condition_hash, account=msg.sender)


@external
def grant_data_access(request: bytes32, provider: bytes32, until: uint256):
    """The provider grants (or changes) time-bounded data access until a unix time."""
    r: Request = self._request(request)
    t: Track = self._track(request, provider)
    self._check_provider_operator(provider)
    assert self._active(r.requester), "requester suspended"
    assert r.state == APPROVED, "bad state"
    assert t.state == AGREED, "bad state"
    assert until > block.timestamp, "until not in future"
    self.tracks[request][provider].data_until = until
    log DataAccessGranted(request=request, provider=provider, until=until, account=msg.sender)


@external
def return_results(request: bytes32, results_hash: bytes32):
    """A requester researcher returns results (may be called once per publication/dataset)."""
    r: Request = self._request(request)
    self._check_requester_researcher(r.requester)
    assert r.state == APPROVED, "bad state"
    assert r.agreements > 0, "no agreement"
    assert results_hash != empty(bytes32), "empty results"
    self.requests[request].results_count = r.results_count + 1
    self.requests[request].results_hash = results_hash
    log ResultsReturned(request=request, results_hash=results_hash, index=r.results_count, account=msg.sender)


@external
def close(request: bytes32):
    """A requester researcher closes (or withdraws) the request."""
    r: Request = self._request(request)
    self._check_requester_researcher(r.requester)
    assert r.state == SUBMITTED or r.state == APPROVED, "bad state"
    self.requests[request].state = CLOSED
    log Closed(request=request, account=msg.sender)


@external
def revoke(request: bytes32, provider: bytes32, reason_hash: bytes32):
    """The provider withdraws its availability or agreement (e.g. consent withdrawal)."""
    r: Request = self._request(request)
    t: Track = self._track(request, provider)
    self._check_provider_operator(provider)
    assert r.state == APPROVED or r.state == CLOSED, "bad state"
    assert t.state == AVAILABLE or t.state == AGREED, "bad state"
    assert reason_hash != empty(bytes32), "empty reason"
    self.tracks[request][provider].state = REVOKED
    self.tracks[request][provider].reason_hash = reason_hash
    log Revoked(request=request, provider=provider, reason_hash=reason_hash, account=msg.sender)


@external
def expire(request: bytes32):
    """Anyone expires a request whose deadline passed without any agreement."""
    r: Request = self._request(request)
    assert r.state == SUBMITTED or r.state == APPROVED, "bad state"
    assert r.agreements == 0, "has agreement"
    assert block.timestamp >= r.deadline, "not due"
    self.requests[request].state = EXPIRED
    log Expired(request=request, account=msg.sender)


# ---------------------------------------------------------------- views

@external
@view
def providers_of(request: bytes32) -> DynArray[bytes32, MAX_PROVIDERS]:
    """The request's provider institutions, in submit order."""
    return self._providers[request]


@external
@view
def request_state(request: bytes32) -> uint8:
    """0 unknown, 1 submitted, 2 approved, 3 rejected, 4 closed, 5 expired."""
    return self.requests[request].state


@external
@view
def provider_state(request: bytes32, provider: bytes32) -> uint8:
    """0 not a provider, 1 pending, 2 available, 3 unavailable, 4 agreed, 5 revoked."""
    return self.tracks[request][provider].state


@external
@view
def data_access_valid(request: bytes32, provider: bytes32) -> bool:
    """True while an agreed, unrevoked track's data access grant has not run out and the request is open
    (closing a request ends its data access, as it does on the nodes)."""
    t: Track = self.tracks[request][provider]
    return t.state == AGREED and block.timestamp < t.data_until and self.requests[request].state == APPROVED
