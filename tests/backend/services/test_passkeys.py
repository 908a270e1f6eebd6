"""Passkeys in the services, with a software authenticator that answers as a browser would
(tests/passkey_authenticator.py): registration and sign-in verified by py_webauthn; replay, an
expired challenge, another user's passkey, the wrong origin or RP id, a counter going backwards and
malformed answers refused; names, ownership, the last-factor rule, the policy, and the audit trail
(which never holds a key, a credential id or a challenge)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, LoginAttempt, User
from backend.models.two_factor import Passkey
from backend.services import passkeys, two_factor
from backend.services.auth import CODE, ENROL, AuthService
from backend.services.passkeys import PasskeyService, RelyingParty
from backend.services.two_factor import TwoFactorService
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.passkey_authenticator import SoftAuthenticator

RP = RelyingParty(id="admin.example.test", origin="https://admin.example.test")
ANONYMOUS = Actor(user_id=None, username="anonymous")


def as_user(session: AsyncSession, settings: Settings, user: User) -> UnitOfWork:
    return UnitOfWork(session, actor=Actor(user_id=user.id, username=user.username), settings=settings)


async def registered(
    session: AsyncSession, settings: Settings, user: User, name: str = "laptop"
) -> SoftAuthenticator:
    """`user` adds a passkey as they would on My account; the authenticator that holds it."""
    device = SoftAuthenticator()
    service = PasskeyService(as_user(session, settings, user))
    ceremony = await service.registration_options(user.id, name, RP)
    await service.register(
        user.id, ceremony.challenge_token, device.create(ceremony.options, origin=RP.origin), RP
    )
    await session.commit()
    return device


async def pending(session: AsyncSession, settings: Settings, user: User) -> tuple[AuthService, str]:
    auth = AuthService(UnitOfWork(session, actor=ANONYMOUS, settings=settings))
    outcome = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.9.0.1")
    await session.commit()
    assert outcome.pending_factor == CODE and outcome.token is not None
    return auth, outcome.token


async def actions(session: AsyncSession, user: User) -> list[str]:
    found = await session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_id == str(user.id)).order_by(AuditEntry.id)
    )
    return list(found)


# Registration ----------------------------------------------------------------------------------


async def test_a_registered_passkey_is_kept_with_its_public_key_only_and_audited(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    await session.commit()
    device = SoftAuthenticator()
    service = PasskeyService(as_user(session, settings, user))
    ceremony = await service.registration_options(user.id, "  my   laptop ", RP)
    assert ceremony.options["rp"]["id"] == RP.id and ceremony.options["user"]["name"] == user.username
    passkey = await service.register(
        user.id, ceremony.challenge_token, device.create(ceremony.options, origin=RP.origin), RP
    )
    await session.commit()
    assert passkey.name == "my laptop" and passkey.credential_id == device.id
    assert passkey.transports == "internal" and passkey.sign_count == 0 and passkey.last_used_at is None
    assert [p.name for p in await service.list(user.id)] == ["my laptop"]
    assert two_factor.PASSKEY_ADDED in await actions(session, user)
    trail = json.dumps([e.changes for e in await session.scalars(select(AuditEntry))])
    assert device.id not in trail and ceremony.options["challenge"] not in trail
    # the same passkey twice, with a new challenge: refused
    again = await service.registration_options(user.id, "again", RP)
    with pytest.raises(Conflict):
        await service.register(
            user.id, again.challenge_token, device.create(again.options, origin=RP.origin), RP
        )


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\u0007bell"])
async def test_a_passkey_needs_a_name(session: AsyncSession, settings: Settings, name: str) -> None:
    user = await make_user(session)
    with pytest.raises(ValidationFailed) as refused:
        await PasskeyService(as_user(session, settings, user)).registration_options(user.id, name, RP)
    assert refused.value.message == passkeys.NAME_NEEDED


async def test_names_are_unique_per_user_not_across_users(session: AsyncSession, settings: Settings) -> None:
    ada, bob = await make_user(session), await make_user(session)
    await registered(session, settings, ada, "phone")
    with pytest.raises(ValidationFailed) as refused:
        await PasskeyService(as_user(session, settings, ada)).registration_options(ada.id, "phone", RP)
    assert refused.value.message == passkeys.NAME_TAKEN
    await registered(session, settings, bob, "phone")


async def test_registration_is_refused_for_another_account_the_wrong_origin_and_a_stale_challenge(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, bob = await make_user(session), await make_user(session)
    service = PasskeyService(as_user(session, settings, ada))
    with pytest.raises(PermissionDenied):
        await service.registration_options(bob.id, "theirs", RP)
    device = SoftAuthenticator()
    ceremony = await service.registration_options(ada.id, "laptop", RP)
    with pytest.raises(ValidationFailed) as wrong_origin:
        await service.register(
            ada.id, ceremony.challenge_token, device.create(ceremony.options, origin="https://evil.test"), RP
        )
    assert wrong_origin.value.message == passkeys.NOT_VERIFIED
    with pytest.raises(ValidationFailed):  # another user's challenge
        await PasskeyService(as_user(session, settings, bob)).register(
            bob.id, ceremony.challenge_token, device.create(ceremony.options, origin=RP.origin), RP
        )
    for bad in (None, "text", {"id": "x"}, {"id": 1, "rawId": [], "response": "no"}):
        with pytest.raises(ValidationFailed) as malformed:
            await service.register(ada.id, ceremony.challenge_token, bad, RP)
        assert malformed.value.message == passkeys.BAD_RESPONSE
    later = time.time() + passkeys.CHALLENGE_SECONDS + 5
    monkeypatch.setattr(time, "time", lambda: later)  # the clock moves on past the challenge's life
    with pytest.raises(ValidationFailed) as expired:
        await service.register(
            ada.id, ceremony.challenge_token, device.create(ceremony.options, origin=RP.origin), RP
        )
    assert expired.value.message == passkeys.CHALLENGE_EXPIRED
    assert await service.count(ada.id) == 0


# Signing in ------------------------------------------------------------------------------------


async def test_a_user_with_only_a_passkey_signs_in_with_it(session: AsyncSession, settings: Settings) -> None:
    user = await make_user(session)
    device = await registered(session, settings, user)
    other = await registered(session, settings, await make_user(session))
    auth, token = await pending(session, settings, user)
    ceremony = await auth.passkey_options(token, RP)
    assert [c["id"] for c in ceremony.options["allowCredentials"]] == [device.id]  # not `other`'s
    assert other.id not in json.dumps(ceremony.options)
    outcome = await auth.pass_passkey(
        token,
        ceremony.challenge_token,
        device.get(ceremony.options, origin=RP.origin),
        rp=RP,
        client_address="x",
    )
    await session.commit()
    assert outcome.ok and outcome.token != token and outcome.pending_factor is None
    passkey = (await PasskeyService(as_user(session, settings, user)).list(user.id))[0]
    await session.refresh(passkey)
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    assert [a for a in await actions(session, user) if a.startswith(("passkey", "login"))][-2:] == [
        two_factor.PASSKEY_PASSED,
        "login",
    ]
    assert await auth.authenticate(outcome.token or "") is not None


async def test_an_answer_is_good_once_and_only_for_its_session(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    device = await registered(session, settings, user)
    service = PasskeyService(UnitOfWork(session, actor=ANONYMOUS, settings=settings))
    ceremony = await service.authentication_options(user, session_key="s1", rp=RP)
    answer = device.get(ceremony.options, origin=RP.origin)
    with pytest.raises(ValidationFailed):  # another session's challenge
        await service.verify_assertion(user, ceremony.challenge_token, answer, session_key="s2", rp=RP)
    assert await service.verify_assertion(user, ceremony.challenge_token, answer, session_key="s1", rp=RP)
    # replayed: the same answer, and a fresh signature over the same challenge
    assert not await service.verify_assertion(user, ceremony.challenge_token, answer, session_key="s1", rp=RP)
    fresh = device.get(ceremony.options, origin=RP.origin)
    assert not await service.verify_assertion(user, ceremony.challenge_token, fresh, session_key="s1", rp=RP)
    await service.uow.flush()
    assert (await actions(session, user)).count(two_factor.PASSKEY_FAILED) == 2


async def test_a_counter_that_does_not_move_forward_is_refused(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    device = await registered(session, settings, user)
    service = PasskeyService(UnitOfWork(session, actor=ANONYMOUS, settings=settings))
    first = await service.authentication_options(user, session_key="s", rp=RP)
    assert await service.verify_assertion(
        user, first.challenge_token, device.get(first.options, origin=RP.origin), session_key="s", rp=RP
    )
    device.sign_count = 0  # a cloned key, behind the original
    second = await service.authentication_options(user, session_key="s", rp=RP)
    answer = device.get(second.options, origin=RP.origin)
    assert not await service.verify_assertion(user, second.challenge_token, answer, session_key="s", rp=RP)


async def test_another_users_passkey_the_wrong_origin_or_rp_are_failed_attempts(
    session: AsyncSession, settings: Settings
) -> None:
    ada, bob = await make_user(session), await make_user(session)
    adas = await registered(session, settings, ada)
    bobs = await registered(session, settings, bob)
    auth, token = await pending(session, settings, ada)
    cases = (
        (bobs, RP.origin, None),  # Bob's passkey for Ada's sign-in
        (adas, "https://evil.test", None),  # Ada's, answered on another site
        (adas, RP.origin, "evil.test"),  # Ada's, for another relying party
    )
    for device, origin, rp_id in cases:
        ceremony = await auth.passkey_options(token, RP)
        answer = device.get(ceremony.options, origin=origin, rp_id=rp_id)
        outcome = await auth.pass_passkey(
            token, ceremony.challenge_token, answer, rp=RP, client_address="10.9.0.2"
        )
        assert not outcome.ok and outcome.message == passkeys.NOT_VERIFIED
    await session.commit()
    assert (await actions(session, ada)).count(two_factor.PASSKEY_FAILED) == 3
    failures = await session.scalars(
        select(LoginAttempt).where(LoginAttempt.username == ada.username, LoginAttempt.succeeded.is_(False))
    )
    assert len(list(failures)) == 3


async def test_an_expired_challenge_or_garbage_is_a_validation_error_not_counted(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(session)
    device = await registered(session, settings, user)
    auth, token = await pending(session, settings, user)
    ceremony = await auth.passkey_options(token, RP)
    garbage: tuple[object, ...] = (None, [], {"id": device.id}, "x" * 10)
    for bad in garbage:
        with pytest.raises(ValidationFailed):
            await auth.pass_passkey(token, ceremony.challenge_token, bad, rp=RP, client_address="a")
    with pytest.raises(ValidationFailed):
        await auth.pass_passkey(
            token, "forged", device.get(ceremony.options, origin=RP.origin), rp=RP, client_address="a"
        )
    later = time.time() + passkeys.CHALLENGE_SECONDS + 5
    answer = device.get(ceremony.options, origin=RP.origin)
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(ValidationFailed) as expired:
        await PasskeyService(auth.uow).verify_assertion(
            user, ceremony.challenge_token, answer, session_key="any", rp=RP
        )
    assert expired.value.message == passkeys.CHALLENGE_EXPIRED


async def test_a_session_that_is_not_pending_gets_no_options(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    await registered(session, settings, user)
    auth = AuthService(UnitOfWork(session, actor=ANONYMOUS, settings=settings))
    with pytest.raises(PermissionDenied):
        await auth.passkey_options("no-such-token", RP)
    plain = await make_user(session)
    await session.commit()
    outcome = await auth.login(plain.username, DEFAULT_PASSWORD, client_address="10.9.0.3")
    assert outcome.ok and outcome.pending_factor is None  # no factor: signed in, nothing pending
    with pytest.raises(PermissionDenied):
        await auth.passkey_options(outcome.token or "", RP)


# Removal and policy ----------------------------------------------------------------------------


async def test_the_owner_removes_a_passkey_and_nobody_else(session: AsyncSession, settings: Settings) -> None:
    ada, bob = await make_user(session), await make_user(session)
    await registered(session, settings, ada)
    passkey = (await PasskeyService(as_user(session, settings, ada)).list(ada.id))[0]
    with pytest.raises(PermissionDenied):
        await PasskeyService(as_user(session, settings, bob)).remove(ada.id, passkey.id)
    with pytest.raises(NotFound):
        await PasskeyService(as_user(session, settings, bob)).remove(bob.id, passkey.id)
    with pytest.raises(PermissionDenied):  # half-signed-in, or the system: not the owner signed in
        await PasskeyService(UnitOfWork(session, actor=ANONYMOUS, settings=settings)).remove(
            ada.id, passkey.id
        )
    assert await PasskeyService(as_user(session, settings, ada)).remove(ada.id, passkey.id) == "laptop"
    await session.commit()
    assert await session.scalar(select(Passkey).where(Passkey.user_id == ada.id)) is None
    assert two_factor.PASSKEY_REMOVED in await actions(session, ada)


async def test_a_passkey_answers_the_policy_and_the_last_factor_stays(
    session: AsyncSession, settings: Settings
) -> None:
    local = settings.model_copy(update={"require_2fa_for": "superusers"})
    root = await make_user(session, is_superuser=True)
    await session.commit()
    auth = AuthService(UnitOfWork(session, actor=ANONYMOUS, settings=local))
    first = await auth.login(root.username, DEFAULT_PASSWORD, client_address="10.9.0.4")
    assert first.pending_factor == ENROL
    await registered(session, local, root, "key one")
    status = await TwoFactorService(as_user(session, local, root)).status(root.id)
    assert status.required and status.passkeys == 1 and status.has_factor and status.enrolled_at is None
    second = await auth.login(root.username, DEFAULT_PASSWORD, client_address="10.9.0.4")
    assert second.pending_factor == CODE
    service = PasskeyService(as_user(session, local, root))
    only = (await service.list(root.id))[0]
    with pytest.raises(PermissionDenied) as refused:
        await service.remove(root.id, only.id)
    assert refused.value.message == passkeys.LAST_FACTOR
    await registered(session, local, root, "key two")
    assert await service.remove(root.id, only.id) == "key one"
