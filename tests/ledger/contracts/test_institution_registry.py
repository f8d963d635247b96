"""InstitutionRegistry: consortium admin, institutions, suspension, role accounts, handovers."""

from __future__ import annotations

import boa
import pytest

from biobank.ledger.keys import Role
from tests.ledger.contracts.conftest import World, as_, events, inst_id, key_account, who

ZERO = "0x0000000000000000000000000000000000000000"
NOT_CONSORTIUM_ADMIN = ["outsider", "a.admin", "a.operator", "b.researcher"]


# ------------------------------------------------------------------ allowed


def test_deployer_is_consortium_admin(world: World) -> None:
    assert world.registry.admin() == world.deployer
    assert world.registry.pending_admin() == ZERO


def test_consortium_admin_two_step_handover(world: World) -> None:
    reg = world.registry
    new = key_account("new-consortium-admin").address
    reg.propose_admin(new)
    assert events(reg, "AdminProposed")[0].proposed == new
    assert reg.admin() == world.deployer  # nothing changes before acceptance
    with as_(new):
        reg.accept_admin()
    changed = events(reg, "AdminChanged")[0]
    assert (changed.previous, changed.admin) == (world.deployer, new)
    assert reg.admin() == new and reg.pending_admin() == ZERO
    with boa.reverts("not consortium admin"):
        reg.suspend(world.a.id)  # the old admin lost its powers
    with as_(new):
        reg.suspend(world.a.id)


def test_consortium_admin_proposal_can_be_cancelled(world: World) -> None:
    reg = world.registry
    new = key_account("new-consortium-admin").address
    reg.propose_admin(new)
    reg.propose_admin(ZERO)
    with as_(new), boa.reverts("no pending admin"):
        reg.accept_admin()


def test_add_institution(world: World) -> None:
    reg = world.registry
    admin = key_account("D/admin").address
    count = reg.institution_count()
    reg.add_institution(inst_id("CN-GZ-D"), "CN-GZ-D", admin)
    added = events(reg, "InstitutionAdded")[0]
    assert (added.inst, added.code, added.admin) == (inst_id("CN-GZ-D"), "CN-GZ-D", admin)
    info = reg.institutions(inst_id("CN-GZ-D"))
    assert (info.code, info.admin, info.pending_admin, info.active, info.registered) == (
        "CN-GZ-D",
        admin,
        ZERO,
        True,
        True,
    )
    assert reg.institution_count() == count + 1
    assert reg.institution_at(count) == inst_id("CN-GZ-D")
    assert reg.is_active(inst_id("CN-GZ-D")) and reg.is_registered(inst_id("CN-GZ-D"))
    assert reg.institution_of(admin) == inst_id("CN-GZ-D")
    assert reg.institution_admin(inst_id("CN-GZ-D")) == admin
    assert reg.has_role(admin, Role.INSTITUTION_ADMIN)
    assert reg.roles_of(admin) == Role.INSTITUTION_ADMIN


def test_fixture_roles(world: World) -> None:
    reg = world.registry
    for inst in (world.a, world.b, world.c):
        assert reg.has_role(inst.admin.address, Role.INSTITUTION_ADMIN)
        assert reg.has_role(inst.operator.address, Role.BIOBANK_OPERATOR)
        assert reg.has_role(inst.reviewer.address, Role.ETHICS_REVIEWER)
        assert reg.has_role(inst.researcher.address, Role.RESEARCHER)
        assert reg.has_role(inst.anchorer.address, Role.ANCHORER)
        assert not reg.has_role(inst.operator.address, Role.RESEARCHER)
        assert not reg.has_role(inst.researcher.address, Role.INSTITUTION_ADMIN)
        assert reg.institution_of(inst.anchorer.address) == inst.id
    assert reg.institution_of(world.outsider.address) == b"\x00" * 32
    assert not reg.has_role(world.outsider.address, Role.RESEARCHER)
    assert reg.membership(world.a.operator.address) == (world.a.id, Role.BIOBANK_OPERATOR, True)
    assert reg.membership(world.outsider.address) == (b"\x00" * 32, 0, False)


def test_has_role_needs_every_flag_and_a_nonzero_role(world: World) -> None:
    reg = world.registry
    account = world.a.researcher.address
    with as_(world.a.admin):
        reg.grant_role(world.a.id, account, Role.ANCHORER)
    assert reg.has_role(account, Role.RESEARCHER | Role.ANCHORER)
    assert not reg.has_role(account, Role.RESEARCHER | Role.BIOBANK_OPERATOR)
    assert not reg.has_role(account, 0)


def test_suspend_and_reinstate(world: World) -> None:
    reg = world.registry
    reg.suspend(world.a.id)
    assert events(reg, "InstitutionSuspended")[0].inst == world.a.id
    assert not reg.is_active(world.a.id) and reg.is_registered(world.a.id)
    for attr, role in [("admin", 1), ("operator", 2), ("reviewer", 4), ("researcher", 8), ("anchorer", 16)]:
        account = getattr(world.a, attr).address
        assert not reg.has_role(account, role)
        assert reg.roles_of(account) == role  # flags are kept, only disabled
        assert reg.institution_of(account) == world.a.id
    assert reg.membership(world.a.operator.address) == (world.a.id, Role.BIOBANK_OPERATOR, False)
    assert reg.has_role(world.b.operator.address, Role.BIOBANK_OPERATOR)
    reg.reinstate(world.a.id)
    assert events(reg, "InstitutionReinstated")[0].inst == world.a.id
    assert reg.is_active(world.a.id)
    assert reg.has_role(world.a.operator.address, Role.BIOBANK_OPERATOR)


def test_grant_accumulates_and_revoke_clears(world: World) -> None:
    reg = world.registry
    account = key_account("A/new").address
    with as_(world.a.admin):
        reg.grant_role(world.a.id, account, Role.RESEARCHER)
        assert events(reg, "RoleGranted")[0].held == Role.RESEARCHER
        reg.grant_role(world.a.id, account, Role.ANCHORER | Role.BIOBANK_OPERATOR)
        granted = events(reg, "RoleGranted")[0]
        assert (granted.inst, granted.account, granted.roles, granted.held) == (
            world.a.id,
            account,
            Role.ANCHORER | Role.BIOBANK_OPERATOR,
            Role.RESEARCHER | Role.ANCHORER | Role.BIOBANK_OPERATOR,
        )
        reg.revoke_role(world.a.id, account, Role.ANCHORER)
        revoked = events(reg, "RoleRevoked")[0]
        assert (revoked.roles, revoked.held) == (Role.ANCHORER, Role.RESEARCHER | Role.BIOBANK_OPERATOR)
        assert not reg.has_role(account, Role.ANCHORER)
        assert reg.has_role(account, Role.RESEARCHER)
        reg.revoke_role(world.a.id, account, Role.RESEARCHER | Role.BIOBANK_OPERATOR)
    assert reg.roles_of(account) == 0
    # an account with no role left leaves the institution and may join another one
    assert reg.institution_of(account) == b"\x00" * 32
    with as_(world.b.admin):
        reg.grant_role(world.b.id, account, Role.RESEARCHER)
    assert reg.institution_of(account) == world.b.id


def test_institution_admin_may_hold_other_roles_and_keeps_membership(world: World) -> None:
    reg = world.registry
    admin = world.a.admin.address
    with as_(admin):
        reg.grant_role(world.a.id, admin, Role.ANCHORER)
        assert reg.roles_of(admin) == Role.INSTITUTION_ADMIN | Role.ANCHORER
        reg.revoke_role(world.a.id, admin, Role.ANCHORER)
    assert reg.roles_of(admin) == Role.INSTITUTION_ADMIN
    assert reg.institution_of(admin) == world.a.id


def test_revoke_allowed_while_suspended(world: World) -> None:
    reg = world.registry
    reg.suspend(world.a.id)
    with as_(world.a.admin):
        reg.revoke_role(world.a.id, world.a.researcher.address, Role.RESEARCHER)
    assert reg.roles_of(world.a.researcher.address) == 0


def test_institution_admin_two_step_handover(world: World) -> None:
    reg = world.registry
    old, new = world.a.admin.address, key_account("A/new-admin").address
    with as_(old):
        reg.propose_institution_admin(world.a.id, new)
    proposed = events(reg, "InstitutionAdminProposed")[0]
    assert (proposed.inst, proposed.current, proposed.proposed) == (world.a.id, old, new)
    assert reg.institutions(world.a.id).pending_admin == new
    assert reg.institution_admin(world.a.id) == old
    with as_(new):
        reg.accept_institution_admin(world.a.id)
    changed = events(reg, "InstitutionAdminChanged")[0]
    assert (changed.inst, changed.previous, changed.admin) == (world.a.id, old, new)
    assert reg.institution_admin(world.a.id) == new
    assert reg.institutions(world.a.id).pending_admin == ZERO
    assert reg.has_role(new, Role.INSTITUTION_ADMIN) and reg.institution_of(new) == world.a.id
    assert not reg.has_role(old, Role.INSTITUTION_ADMIN)
    assert reg.institution_of(old) == b"\x00" * 32  # the old admin had no other role
    with as_(old), boa.reverts("not institution admin"):
        reg.grant_role(world.a.id, world.outsider.address, Role.RESEARCHER)
    with as_(new):
        reg.grant_role(world.a.id, world.outsider.address, Role.RESEARCHER)


def test_institution_admin_handover_to_a_member_keeps_old_admin_roles(world: World) -> None:
    reg = world.registry
    old, new = world.a.admin.address, world.a.operator.address
    with as_(old):
        reg.grant_role(world.a.id, old, Role.ANCHORER)
        reg.propose_institution_admin(world.a.id, new)
    with as_(new):
        reg.accept_institution_admin(world.a.id)
    assert reg.roles_of(new) == Role.INSTITUTION_ADMIN | Role.BIOBANK_OPERATOR
    assert reg.roles_of(old) == Role.ANCHORER
    assert reg.institution_of(old) == world.a.id


def test_institution_admin_handover_allowed_while_suspended(world: World) -> None:
    reg = world.registry
    new = key_account("A/new-admin").address
    reg.suspend(world.a.id)
    with as_(world.a.admin):
        reg.propose_institution_admin(world.a.id, new)
    with as_(new):
        reg.accept_institution_admin(world.a.id)
    assert reg.institution_admin(world.a.id) == new
    assert not reg.has_role(new, Role.INSTITUTION_ADMIN)  # still suspended


def test_institution_admin_proposal_can_be_cancelled(world: World) -> None:
    reg = world.registry
    new = key_account("A/new-admin").address
    with as_(world.a.admin):
        reg.propose_institution_admin(world.a.id, new)
        reg.propose_institution_admin(world.a.id, ZERO)
    with as_(new), boa.reverts("no pending admin"):
        reg.accept_institution_admin(world.a.id)


def test_set_contract(world: World) -> None:
    reg = world.registry
    assert reg.contract_address("AccessAgreements") == world.agreements.address
    assert reg.contract_address("RevenueLedger") == world.revenue.address
    assert reg.contract_address("Nothing") == ZERO
    reg.set_contract("AuditAnchors", world.outsider.address)
    logged = events(reg, "ContractSet")[0]
    assert (logged.name, logged.addr) == ("AuditAnchors", world.outsider.address)
    assert reg.contract_address("AuditAnchors") == world.outsider.address


# ------------------------------------------------------------------ forbidden: consortium admin


@pytest.mark.parametrize("caller", NOT_CONSORTIUM_ADMIN)
@pytest.mark.parametrize(
    "call",
    ["propose_admin", "add_institution", "suspend", "reinstate", "set_contract"],
)
def test_consortium_admin_functions_refuse_others(world: World, caller: str, call: str) -> None:
    reg = world.registry
    args = {
        "propose_admin": (world.outsider.address,),
        "add_institution": (inst_id("X"), "X", key_account("X/admin").address),
        "suspend": (world.a.id,),
        "reinstate": (world.a.id,),
        "set_contract": ("AccessAgreements", world.outsider.address),
    }[call]
    if call == "reinstate":
        reg.suspend(world.a.id)
    with as_(who(world, caller)), boa.reverts("not consortium admin"):
        getattr(reg, call)(*args)


def test_accept_admin_without_proposal(world: World) -> None:
    with as_(world.outsider), boa.reverts("no pending admin"):
        world.registry.accept_admin()


@pytest.mark.parametrize("caller", ["outsider", "deployer", "a.admin"])
def test_accept_admin_only_by_proposed(world: World, caller: str) -> None:
    world.registry.propose_admin(key_account("new-consortium-admin").address)
    with as_(who(world, caller)), boa.reverts("not pending admin"):
        world.registry.accept_admin()


@pytest.mark.parametrize(
    ("inst", "code", "admin", "message"),
    [
        ("X", "", "X/admin", "empty code"),
        ("Y", "X", "X/admin", "inst is not keccak256(code)"),
        ("CN-SH-A", "CN-SH-A", "X/admin", "institution exists"),
        ("X", "X", None, "empty admin"),
        ("X", "X", "b.operator", "account in another institution"),
        ("X", "X", "a.admin", "account in another institution"),
    ],
)
def test_add_institution_refusals(world: World, inst: str, code: str, admin: str | None, message: str) -> None:
    if admin is None:
        address = ZERO
    elif "/" in admin:
        address = key_account(admin).address
    else:
        address = who(world, admin)
    with boa.reverts(message):
        world.registry.add_institution(inst_id(inst), code, address)


def test_suspend_refusals(world: World) -> None:
    reg = world.registry
    with boa.reverts("unknown institution"):
        reg.suspend(inst_id("nowhere"))
    reg.suspend(world.a.id)
    with boa.reverts("already suspended"):
        reg.suspend(world.a.id)


def test_reinstate_refusals(world: World) -> None:
    reg = world.registry
    with boa.reverts("unknown institution"):
        reg.reinstate(inst_id("nowhere"))
    with boa.reverts("not suspended"):
        reg.reinstate(world.a.id)


def test_set_contract_refuses_empty_name(world: World) -> None:
    with boa.reverts("empty name"):
        world.registry.set_contract("", world.outsider.address)


# ------------------------------------------------------------------ forbidden: institution admin

NOT_INSTITUTION_ADMIN_OF_A = ["deployer", "outsider", "a.operator", "a.researcher", "b.admin"]


@pytest.mark.parametrize("caller", NOT_INSTITUTION_ADMIN_OF_A)
@pytest.mark.parametrize("call", ["grant_role", "revoke_role", "propose_institution_admin"])
def test_institution_admin_functions_refuse_others(world: World, caller: str, call: str) -> None:
    reg = world.registry
    args = {
        "grant_role": (world.a.id, world.outsider.address, Role.RESEARCHER),
        "revoke_role": (world.a.id, world.a.researcher.address, Role.RESEARCHER),
        "propose_institution_admin": (world.a.id, world.outsider.address),
    }[call]
    with as_(who(world, caller)), boa.reverts("not institution admin"):
        getattr(reg, call)(*args)


@pytest.mark.parametrize("call", ["grant_role", "revoke_role", "propose_institution_admin", "accept_institution_admin"])
def test_institution_admin_functions_refuse_unknown_institution(world: World, call: str) -> None:
    reg = world.registry
    args = {
        "grant_role": (inst_id("nowhere"), world.outsider.address, Role.RESEARCHER),
        "revoke_role": (inst_id("nowhere"), world.outsider.address, Role.RESEARCHER),
        "propose_institution_admin": (inst_id("nowhere"), world.outsider.address),
        "accept_institution_admin": (inst_id("nowhere"),),
    }[call]
    with as_(world.a.admin), boa.reverts("unknown institution"):
        getattr(reg, call)(*args)


def test_grant_refused_while_suspended(world: World) -> None:
    world.registry.suspend(world.a.id)
    with as_(world.a.admin), boa.reverts("institution suspended"):
        world.registry.grant_role(world.a.id, world.outsider.address, Role.RESEARCHER)


@pytest.mark.parametrize("call", ["grant_role", "revoke_role"])
@pytest.mark.parametrize(
    "roles", [0, int(Role.INSTITUTION_ADMIN), 32, 33, int(Role.INSTITUTION_ADMIN | Role.RESEARCHER)]
)
def test_bad_role_flags_refused(world: World, call: str, roles: int) -> None:
    with as_(world.a.admin), boa.reverts("bad roles"):
        getattr(world.registry, call)(world.a.id, world.a.researcher.address, roles)


def test_grant_refuses_empty_account(world: World) -> None:
    with as_(world.a.admin), boa.reverts("empty account"):
        world.registry.grant_role(world.a.id, ZERO, Role.RESEARCHER)


@pytest.mark.parametrize("account", ["b.researcher", "b.admin"])
def test_grant_refuses_account_of_another_institution(world: World, account: str) -> None:
    with as_(world.a.admin), boa.reverts("account in another institution"):
        world.registry.grant_role(world.a.id, who(world, account), Role.RESEARCHER)


@pytest.mark.parametrize("account", ["outsider", "b.researcher"])
def test_revoke_refuses_account_outside_institution(world: World, account: str) -> None:
    with as_(world.a.admin), boa.reverts("account not in institution"):
        world.registry.revoke_role(world.a.id, who(world, account), Role.RESEARCHER)


@pytest.mark.parametrize("account", ["b.researcher", "b.admin"])
def test_propose_institution_admin_refuses_account_of_another_institution(world: World, account: str) -> None:
    with as_(world.a.admin), boa.reverts("account in another institution"):
        world.registry.propose_institution_admin(world.a.id, who(world, account))


def test_accept_institution_admin_without_proposal(world: World) -> None:
    with as_(world.a.operator), boa.reverts("no pending admin"):
        world.registry.accept_institution_admin(world.a.id)


@pytest.mark.parametrize("caller", ["a.admin", "a.operator", "deployer", "b.admin", "outsider"])
def test_accept_institution_admin_only_by_proposed(world: World, caller: str) -> None:
    with as_(world.a.admin):
        world.registry.propose_institution_admin(world.a.id, key_account("A/new-admin").address)
    with as_(who(world, caller)), boa.reverts("not pending admin"):
        world.registry.accept_institution_admin(world.a.id)


def test_accept_institution_admin_refused_after_joining_another_institution(world: World) -> None:
    reg = world.registry
    new = key_account("A/new-admin").address
    with as_(world.a.admin):
        reg.propose_institution_admin(world.a.id, new)
    with as_(world.b.admin):
        reg.grant_role(world.b.id, new, Role.RESEARCHER)
    with as_(new), boa.reverts("account in another institution"):
        reg.accept_institution_admin(world.a.id)
