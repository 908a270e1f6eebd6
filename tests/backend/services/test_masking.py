"""The one masking rule, and the services that hand values out through it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.orm.exc import DetachedInstanceError

from backend.auth.actor import Actor
from backend.db.policy import Policy
from backend.db.uow import UnitOfWork
from backend.errors import Conflict
from backend.models import Customer
from backend.services import masking
from backend.services.customers import CustomerService
from backend.services.history import AuditFilters, AuditLog
from backend.services.users import UserService
from tests.backend.services.conftest import UowFactory

NO_PII = Actor(user_id=1, username="v", permissions=frozenset({"audit.view", "customer.view"}))
PII = Actor(
    user_id=2, username="p", permissions=frozenset({"audit.view", "customer.view", "customer.view_pii"})
)
ROOT = Actor(user_id=3, username="root", is_superuser=True)
SECRETS = ("pia@example.com", "+44 20 7946 0123", "7 Hidden Lane")


def test_the_rule() -> None:
    assert masking.hidden_fields(NO_PII, "customer") == {"email", "phone", "address"}
    assert masking.hidden_fields(PII, "customer") == frozenset()
    assert masking.hidden_fields(ROOT, "user") == {"password_hash", "totp_secret"}  # secrets: nobody
    assert masking.hidden_fields(NO_PII, "product") == frozenset()
    assert masking.hidden_fields(NO_PII, "user_role") == frozenset()  # no model: nothing declared
    assert masking.shown(NO_PII, "customer", "email", "a@b.c") == masking.MASK
    assert masking.shown(NO_PII, "customer", "email", None) is None
    assert masking.shown(NO_PII, "customer", "name", "Pia") == "Pia"
    assert masking.shown(PII, "customer", "email", "a@b.c") == "a@b.c"
    assert masking.shown(ROOT, "user", "password_hash", "$argon2id$...") == masking.REDACTED
    assert masking.shown_changes(NO_PII, "customer", {"email": [None, "a@b.c"], "name": ["A", "B"]}) == {
        "email": [None, masking.MASK],
        "name": ["A", "B"],
    }
    assert not masking.sees_personal_data(NO_PII, "customer") and masking.sees_personal_data(PII, "customer")


def test_a_label_made_from_personal_data_is_replaced() -> None:
    class Contact:
        policy = Policy(pii={"email"})
        email = ""
        name = ""

        def __str__(self) -> str:
            return f"{self.name} <{self.email}>"

    class Named(Contact):
        def __str__(self) -> str:
            return self.name

    assert masking.label_may_reveal(Contact) and not masking.label_may_reveal(Named)
    assert not masking.label_may_reveal(Customer)  # its label is the name


@pytest.mark.usefixtures("customer_label_with_email")
async def test_audit_search_and_stream_mask_what_the_actor_may_not_see(
    system_uow: UnitOfWork, uow_as: UowFactory
) -> None:
    email, phone, address = SECRETS
    customer = await CustomerService(system_uow).create(
        {"name": "Pia", "email": email, "phone": phone, "address": address}
    )
    await CustomerService(system_uow).update(customer.id, {"email": "pia2@example.com"})
    await CustomerService(system_uow).delete(customer.id)
    filters = AuditFilters(model="customer", object_id=str(customer.id))
    async with uow_as(NO_PII) as uow:
        log = AuditLog(uow)
        for entries in (
            await log.search(filters),
            [entry async for entry in log.stream(filters)],
            await log.history("customer", str(customer.id)),
        ):
            assert [e.action for e in entries] in (
                ["delete", "update", "create"],
                ["create", "update", "delete"],
            )
            text = json.dumps([[e.object_repr, e.changes] for e in entries])
            assert not any(value in text for value in (*SECRETS, "pia2@example.com")), text
            assert {e.object_repr for e in entries} == {f"customer {customer.id}"}
            assert any(e.changes.get("email") == [masking.MASK, masking.MASK] for e in entries)
    async with uow_as(PII) as uow:
        (created,) = await AuditLog(uow).search(AuditFilters(model="customer", action="create"))
        assert created.changes["email"] == [None, email] and created.object_repr == f"Pia <{email}>"


async def test_password_hashes_are_never_shown(system_uow: UnitOfWork, uow_as: UowFactory) -> None:
    user = await UserService(system_uow).create(
        {"username": "hashy", "password": "a-long-enough-password-42"}
    )
    async with uow_as(ROOT) as uow:
        (entry,) = await AuditLog(uow).search(AuditFilters(model="user", object_id=str(user.id)))
    assert entry.changes["password_hash"] == [None, masking.REDACTED]


async def test_a_restore_clash_names_the_value_only_to_who_may_see_it(
    system_uow: UnitOfWork, uow_as: UowFactory
) -> None:
    customers = CustomerService(system_uow)
    old_id = (await customers.create({"name": "Old", "email": "clash@example.com"})).id
    await customers.delete(old_id)
    await customers.create({"name": "New", "email": "clash@example.com"})
    restorer = frozenset({"customer.view", "customer.restore"})
    async with uow_as(Actor(user_id=1, username="r", permissions=restorer)) as uow:
        with pytest.raises(Conflict) as caught:
            await CustomerService(uow).restore(old_id)
    assert caught.value.message == "Cannot restore this customer: A customer with this email already exists."
    assert caught.value.field == "email"
    allowed = restorer | {"customer.view_pii"}
    async with uow_as(Actor(user_id=1, username="r", permissions=allowed)) as uow:
        with pytest.raises(Conflict, match=r"clash@example\.com"):
            await CustomerService(uow).restore(old_id)


def test_a_label_that_cannot_be_loaded_is_neutral_and_any_other_failure_surfaces() -> None:
    class NotLoaded:
        __tablename__ = "customer"
        id = 7

        def __str__(self) -> str:  # a lazy load outside the greenlet, as in an async session
            raise MissingGreenlet("greenlet_spawn has not been called")

    class Detached(NotLoaded):
        def __str__(self) -> str:
            raise DetachedInstanceError("not bound to a Session")

    class Broken(NotLoaded):
        def __str__(self) -> str:
            raise ZeroDivisionError("a bug in the model")

    assert masking.label_for(PII, NotLoaded()) == "customer 7"
    assert masking.label_for(PII, Detached()) == "customer 7"
    with pytest.raises(ZeroDivisionError):
        masking.label_for(PII, Broken())


def test_a_label_that_cannot_be_probed_counts_as_revealing_and_a_bug_surfaces() -> None:
    class ViaPartner:
        policy = Policy(pii={"email"})
        partner = None

        def __str__(self) -> str:
            return str(self.partner.name)  # type: ignore[attr-defined]  # None on the probe

    class Buggy(ViaPartner):
        def __str__(self) -> str:
            raise RuntimeError("a bug in the model")

    assert masking.label_may_reveal(ViaPartner)
    with pytest.raises(RuntimeError):
        masking.label_may_reveal(Buggy)
