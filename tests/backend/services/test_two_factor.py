"""Two-factor sign-in in the services: enrolment, codes (replay, skew, format), recovery codes,
throttling shared with passwords, the policy (REQUIRE_2FA_FOR and the role flag), the pending
session, the administrator's reset under the account-authority rule, and what the audit holds."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.cli import main
from backend.config import Environment, Settings, load_settings
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.errors import ConfigurationError, Conflict, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, AuthSession, LoginAttempt, Role, User
from backend.models.two_factor import RecoveryCode
from backend.services import seed, two_factor
from backend.services.auth import CODE, ENROL, AuthService, hash_token
from backend.services.seed import SeedReport
from backend.services.two_factor import TwoFactorService, parse_code
from backend.services.users import UserService
from tests.databases import TEST_SECRET_KEY, make_settings
from tests.factories import DEFAULT_PASSWORD, make_role, make_user

ANONYMOUS = Actor(user_id=None, username="anonymous")


def code_at(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() + 30 * steps_ahead)


@pytest.fixture
def policy_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"require_2fa_for": "superusers"})


def uow_for(session: AsyncSession, settings: Settings, actor: Actor = ANONYMOUS) -> UnitOfWork:
    return UnitOfWork(session, actor=actor, settings=settings)


async def enrolled(session: AsyncSession, settings: Settings, user: User) -> tuple[str, list[str]]:
    """Enrol `user` as they would: a new secret, confirmed with its current code."""
    me = Actor(user_id=user.id, username=user.username)
    service = TwoFactorService(uow_for(session, settings, me))
    enrolment = await service.start_enrolment(user.id)
    codes = await service.confirm_enrolment(user.id, enrolment.form_token, code_at(enrolment.secret))
    await session.commit()
    return enrolment.secret, codes


async def fresh(session: AsyncSession, user_id: int) -> User:
    """The user as stored now (the services write some columns without the ORM)."""
    stmt = select(User).where(User.id == user_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


async def events(session: AsyncSession, user: User, action: str) -> list[AuditEntry]:
    found = await session.scalars(
        select(AuditEntry).where(AuditEntry.object_id == str(user.id), AuditEntry.action == action)
    )
    return list(found)


# Codes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("123456", ("totp", "123456")),
        ("  654321 ", ("totp", "654321")),
        ("abcde-fghij", ("recovery", "abcde-fghij")),
        ("ABCDEFGHIJ", ("recovery", "abcde-fghij")),
    ],
)
def test_a_code_is_six_ascii_digits_or_a_recovery_code(typed: str, expected: tuple[str, str]) -> None:
    assert parse_code(typed) == expected


@pytest.mark.parametrize(
    "typed",
    ["123 456", "12345", "1234567", "١٢٣٤٥٦", "12345²", "", "x" * 10_000, "abcde fghij", "abcd1-efgh0"],
)
def test_anything_else_is_refused_with_a_sentence(typed: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_code(typed)
    assert refused.value.errors == {"code": [two_factor.CODE_FORMAT]}


def test_the_clock_skew_window_is_one_step_either_side() -> None:
    secret = pyotp.random_base32()
    now = datetime.now(UTC).timestamp()
    step = two_factor.current_step(now)
    for offset in (-1, 0, 1):
        assert two_factor.matching_step(secret, code_at(secret, offset), now=now) in {
            step + offset - 1,
            step + offset,
            step + offset + 1,
        }
    far = pyotp.TOTP(secret).at(now + 30 * 3)
    assert two_factor.matching_step(secret, far, now=now) is None


# Enrolment --------------------------------------------------------------------------------------


async def test_enrolment_stores_the_secret_encrypted_and_the_recovery_codes_hashed(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    await session.commit()
    secret, codes = await enrolled(session, settings, user)
    stored = await fresh(session, user.id)
    assert stored.totp_enrolled_at is not None and stored.totp_secret
    assert secret not in stored.totp_secret
    assert two_factor.open_secret(settings, stored.totp_secret) == secret
    assert len(codes) == len(set(codes)) == 10
    hashes = list(
        await session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id))
    )
    assert len(hashes) == 10 and not set(codes) & set(hashes)
    (entry,) = await events(session, user, two_factor.ENROLLED)
    written = json.dumps(entry.changes) + entry.object_repr
    assert secret not in written and not any(code in written for code in codes)


async def test_a_wrong_code_confirms_nothing_and_is_audited(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    await session.commit()
    me = Actor(user_id=user.id, username=user.username)
    service = TwoFactorService(uow_for(session, settings, me))
    enrolment = await service.start_enrolment(user.id)
    wrong = "000000" if code_at(enrolment.secret) != "000000" else "111111"
    with pytest.raises(ValidationFailed) as refused:
        await service.confirm_enrolment(user.id, enrolment.form_token, wrong)
    assert refused.value.errors == {"code": [two_factor.WRONG_CODE]}
    await session.commit()
    stored = await fresh(session, user.id)
    assert stored.totp_secret is None and stored.totp_enrolled_at is None
    assert await session.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id)) is None
    assert len(await events(session, user, two_factor.FAILED)) == 1


async def test_a_set_up_form_is_good_only_for_its_user_and_unaltered(
    session: AsyncSession, settings: Settings
) -> None:
    owner, other = await make_user(session), await make_user(session)
    await session.commit()
    service = TwoFactorService(uow_for(session, settings, Actor(user_id=other.id, username=other.username)))
    enrolment = await service.start_enrolment(owner.id)
    for user_id, form_token in (
        (other.id, enrolment.form_token),
        (owner.id, enrolment.form_token[:-4] + "AAAA"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await service.confirm_enrolment(user_id, form_token, code_at(enrolment.secret))
        assert refused.value.errors == {"code": [two_factor.ENROLMENT_EXPIRED]}


async def test_enrolling_twice_is_a_conflict(session: AsyncSession, settings: Settings) -> None:
    user = await make_user(session)
    await session.commit()
    await enrolled(session, settings, user)
    with pytest.raises(Conflict):
        await TwoFactorService(uow_for(session, settings)).start_enrolment(user.id)


# Signing in -------------------------------------------------------------------------------------


async def test_an_enrolled_user_is_pending_until_the_code_then_gets_a_new_token(
    session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, roles=["viewer"])
    await session.commit()
    secret, _codes = await enrolled(session, settings, user)
    auth = AuthService(uow_for(session, settings))
    first = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.1")
    assert first.ok and first.pending_factor == CODE and first.token
    assert await auth.authenticate(first.token) is None  # no actor yet
    state = await auth.resolve(first.token)
    assert state is not None and state.pending_factor == CODE and not state.actor.permissions
    done = await auth.pass_second_factor(first.token, code_at(secret, 1), client_address="10.2.0.1")
    assert done.token and done.token != first.token
    await session.commit()
    actor = await AuthService(uow_for(session, settings)).authenticate(done.token)
    assert actor is not None and actor.has_perm("product.view")
    assert await AuthService(uow_for(session, settings)).resolve(first.token) is None
    assert len(await events(session, user, two_factor.PASSED)) == 1


async def test_a_code_is_accepted_once(session: AsyncSession, settings: Settings) -> None:
    user = await make_user(session)
    await session.commit()
    secret, _codes = await enrolled(session, settings, user)
    code = code_at(secret, 1)
    auth = AuthService(uow_for(session, settings))
    first = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.2")
    assert (await auth.pass_second_factor(first.token or "", code, client_address="10.2.0.2")).ok
    second = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.2")
    replayed = await auth.pass_second_factor(second.token or "", code, client_address="10.2.0.2")
    assert not replayed.ok and replayed.message == two_factor.WRONG_CODE
    # The code of the enrolment itself is used up too.
    earlier = await auth.pass_second_factor(second.token or "", code_at(secret), client_address="10.2.0.2")
    assert not earlier.ok


async def test_wrong_codes_are_throttled_like_passwords(session: AsyncSession, settings: Settings) -> None:
    user = await make_user(session)
    await session.commit()
    secret, _codes = await enrolled(session, settings, user)
    auth = AuthService(uow_for(session, settings))
    pending = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.3")
    wrong = "000000" if code_at(secret) != "000000" else "111111"
    for _ in range(settings.login_max_failures_per_user):
        outcome = await auth.pass_second_factor(pending.token or "", wrong, client_address="10.2.0.3")
        assert not outcome.ok and not outcome.throttled
    refused = await auth.pass_second_factor(
        pending.token or "", code_at(secret, 1), client_address="10.2.0.3"
    )
    assert refused.throttled and "Too many failed sign-in attempts" in refused.message
    failures = await session.scalar(
        select(LoginAttempt.id).where(
            LoginAttempt.username == user.username, LoginAttempt.succeeded.is_(False)
        )
    )
    assert failures is not None
    assert len(await events(session, user, two_factor.FAILED)) == settings.login_max_failures_per_user
    # The password is refused too now: one throttle for both factors.
    assert (await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.9.9.9")).throttled


async def test_a_recovery_code_signs_in_once(session: AsyncSession, settings: Settings) -> None:
    user = await make_user(session)
    await session.commit()
    _secret, codes = await enrolled(session, settings, user)
    auth = AuthService(uow_for(session, settings))
    first = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.4")
    assert (await auth.pass_second_factor(first.token or "", codes[3].upper(), client_address="x")).ok
    second = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.4")
    again = await auth.pass_second_factor(second.token or "", codes[3], client_address="x")
    assert not again.ok and again.message == two_factor.WRONG_CODE
    assert len(await events(session, user, two_factor.RECOVERY_USED)) == 1
    status = await TwoFactorService(uow_for(session, settings)).status(user.id)
    assert status.recovery_codes_left == 9


async def test_an_expired_challenge_is_refused(session: AsyncSession, settings: Settings) -> None:
    user = await make_user(session)
    await session.commit()
    secret, _codes = await enrolled(session, settings, user)
    auth = AuthService(uow_for(session, settings))
    pending = await auth.login(user.username, DEFAULT_PASSWORD, client_address="10.2.0.5")
    past = datetime.now(UTC) - timedelta(seconds=1)
    await session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(pending.token or ""))
        .values(expires_at=past)
    )
    state = await auth.resolve(pending.token or "")
    assert state is not None and state.challenge_expired
    with pytest.raises(PermissionDenied):
        await auth.pass_second_factor(pending.token or "", code_at(secret, 1), client_address="x")


# Policy -----------------------------------------------------------------------------------------


async def test_policy_sends_a_superuser_without_a_factor_to_enrolment(
    session: AsyncSession, policy_settings: Settings, settings: Settings
) -> None:
    superuser, plain = await make_user(session, is_superuser=True), await make_user(session)
    await session.commit()
    auth = AuthService(uow_for(session, policy_settings))
    to_enrol = await auth.login(superuser.username, DEFAULT_PASSWORD, client_address="10.3.0.1")
    assert to_enrol.pending_factor == ENROL
    assert (
        await auth.login(plain.username, DEFAULT_PASSWORD, client_address="10.3.0.1")
    ).pending_factor is None
    nobody = AuthService(uow_for(session, settings))  # REQUIRE_2FA_FOR empty
    assert (
        await nobody.login(superuser.username, DEFAULT_PASSWORD, client_address="x")
    ).pending_factor is None

    enrolment = await TwoFactorService(uow_for(session, policy_settings)).start_enrolment(superuser.id)
    outcome, codes = await auth.finish_enrolment(
        to_enrol.token or "", enrolment.form_token, code_at(enrolment.secret), client_address="10.3.0.1"
    )
    assert outcome.ok and len(codes) == 10
    actor = await auth.authenticate(outcome.token or "")
    assert actor is not None and actor.is_superuser


async def test_a_role_flag_or_everyone_requires_it(session: AsyncSession, settings: Settings) -> None:
    role = await make_role(session, permissions=["product.view"])
    holder, other = await make_user(session), await make_user(session)
    holder.roles = [role]
    await session.commit()
    system = uow_for(session, settings, Actor.system("tests"))
    await TwoFactorService(system).set_role_requirement(role.name, required=True)
    auth = AuthService(uow_for(session, settings))
    assert (await auth.login(holder.username, DEFAULT_PASSWORD, client_address="x")).pending_factor == ENROL
    assert (await auth.login(other.username, DEFAULT_PASSWORD, client_address="x")).pending_factor is None
    everyone = AuthService(uow_for(session, settings.model_copy(update={"require_2fa_for": "everyone"})))
    assert (
        await everyone.login(other.username, DEFAULT_PASSWORD, client_address="x")
    ).pending_factor == ENROL
    flagged = await session.scalar(select(Role.requires_two_factor).where(Role.id == role.id))
    assert flagged is True


async def test_setting_the_role_flag_needs_role_change(session: AsyncSession, settings: Settings) -> None:
    role = await make_role(session)
    await session.commit()
    viewer = Actor(user_id=None, username="someone", permissions=frozenset({"role.view"}))
    with pytest.raises(PermissionDenied):
        await TwoFactorService(uow_for(session, settings, viewer)).set_role_requirement(
            role.name, required=True
        )


async def test_a_required_factor_cannot_be_removed_an_optional_one_with_a_code(
    session: AsyncSession, settings: Settings, policy_settings: Settings
) -> None:
    user = await make_user(session, is_superuser=True)
    await session.commit()
    secret, _codes = await enrolled(session, settings, user)
    me = Actor(user_id=user.id, username=user.username)
    with pytest.raises(PermissionDenied):
        await TwoFactorService(uow_for(session, policy_settings, me)).remove(user.id, code_at(secret, 1))
    service = TwoFactorService(uow_for(session, settings, me))
    assert await service.remove(user.id, "000000" if code_at(secret, 1) != "000000" else "111111") is False
    assert await service.remove(user.id, code_at(secret, 1)) is True
    await session.commit()
    stored = await fresh(session, user.id)
    assert stored.totp_secret is None
    assert await session.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id)) is None
    assert len(await events(session, user, two_factor.REMOVED)) == 1


def test_require_2fa_for_defaults_to_superusers_and_refuses_unknown_names() -> None:
    assert Settings.model_fields["require_2fa_for"].default == "superusers"
    settings = load_settings(require_2fa_for=" Superusers , everyone")
    assert settings.two_factor_required_for == {"superusers", "everyone"}
    assert load_settings(require_2fa_for="").two_factor_required_for == frozenset()
    with pytest.raises(ConfigurationError, match="REQUIRE_2FA_FOR"):
        make_settings("sqlite+aiosqlite:///x.sqlite3", require_2fa_for="admins")


# The administrator's reset ----------------------------------------------------------------------


async def test_reset_follows_the_authority_rule_and_ends_sessions(
    session: AsyncSession, settings: Settings
) -> None:
    superuser = await make_user(session, is_superuser=True)
    target = await make_user(session, roles=["viewer"])
    await session.commit()
    await enrolled(session, settings, superuser)
    secret, _codes = await enrolled(session, settings, target)
    manager = Actor(
        user_id=None, username="accounts-admin", permissions=frozenset({"user.view", "user.change"})
    )
    with pytest.raises(PermissionDenied, match="Only a superuser can reset the second factor of"):
        await UserService(uow_for(session, settings, manager)).reset_two_factor(superuser.id)
    still = await fresh(session, superuser.id)
    assert still.totp_enrolled_at is not None

    auth = AuthService(uow_for(session, settings))
    pending = await auth.login(target.username, DEFAULT_PASSWORD, client_address="10.4.0.1")
    signed_in = await auth.pass_second_factor(pending.token or "", code_at(secret, 1), client_address="x")
    boss = Actor(user_id=superuser.id, username=superuser.username, is_superuser=True)
    await UserService(uow_for(session, settings, boss)).reset_two_factor(target.id)
    await session.commit()
    reset = await fresh(session, target.id)
    assert reset.totp_secret is None and reset.totp_enrolled_at is None
    assert await AuthService(uow_for(session, settings)).authenticate(signed_in.token or "") is None
    (entry,) = await events(session, target, two_factor.RESET)
    assert entry.actor_name == superuser.username
    with pytest.raises(Conflict):
        await UserService(uow_for(session, settings, boss)).reset_two_factor(target.id)


# manage.py ---------------------------------------------------------------------------------------


def test_manage_py_lists_the_factor_resets_it_and_flags_a_role(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATABASE_URL": fresh_url,
    }.items():
        monkeypatch.setenv(name, value)

    def manage(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    assert manage("migrate")[0] == 0
    assert (
        manage("createsuperuser", "--username", "root", "--password", "root-long-password-1", "--no-input")[0]
        == 0
    )
    asyncio.run(_enrol_root(make_settings(fresh_url)))
    code, out, _err = manage("users", "list")
    assert code == 0 and "[superuser, 2fa]" in out
    code, out, _err = manage("users", "reset-2fa", "root")
    assert code == 0 and "reset" in out
    assert "2fa" not in manage("users", "list")[1]
    code, _out, err = manage("users", "reset-2fa", "root")
    assert code == 1 and err.strip() == "Error: root has no second factor to reset."
    assert manage("users", "reset-2fa", "nobody")[0] == 1
    code, out, _err = manage("roles", "require-2fa", "viewer")
    assert code == 0 and "viewer" in out
    assert manage("roles", "require-2fa", "no-such-role")[0] == 1


async def _enrol_root(settings: Settings) -> None:
    database = Database(settings)
    try:
        async with unit_of_work(database, Actor.system("tests")) as uow:
            user = await uow.repo(User).get_by(username="root")
            assert user is not None
            await TwoFactorService(uow).enrol_with_secret(user.id, pyotp.random_base32())
            await uow.commit()
    finally:
        await database.dispose()


@pytest.mark.parametrize(("environment", "enrolled_too"), [("development", True), ("test", False)])
async def test_the_demo_admin_is_enrolled_with_the_printed_key_in_development_only(
    session: AsyncSession, settings: Settings, environment: str, enrolled_too: bool
) -> None:
    local = settings.model_copy(update={"environment": Environment(environment)})
    report = SeedReport()
    await seed._demo_users(uow_for(session, local, Actor.system("tests")), report)
    admin = (await session.execute(select(User).where(User.username == "admin"))).scalar_one()
    assert (admin.totp_enrolled_at is not None) is enrolled_too
    shown = dict((name, role) for name, _password, role in report.logins)
    assert (seed.DEMO_TOTP_SECRET in shown["admin"]) is enrolled_too
    if enrolled_too:
        assert two_factor.open_secret(local, admin.totp_secret or "") == seed.DEMO_TOTP_SECRET
        assert all(seed.DEMO_TOTP_SECRET not in role for name, role in shown.items() if name != "admin")
