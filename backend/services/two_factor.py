"""Two-factor sign-in with TOTP (RFC 6238) and single-use recovery codes, and who must use it.

Storage. The TOTP secret is encrypted (Fernet: AES-128-CBC with an HMAC) with a key derived from
SECRET_KEY, so a database dump alone does not give it away. Recovery codes are stored as HMAC-SHA256
under another key derived from SECRET_KEY: they are random (50 bits), so a slow hash would add
nothing against guessing but cost ten Argon2 verifications per use; the keyed hash also makes a dump
useless for guessing offline. Changing SECRET_KEY therefore ends every enrolment (`users reset-2fa`).

Codes. A TOTP code is accepted within one 30-second step either side of the server's clock, and once:
the last accepted step is kept per user and the UPDATE that moves it past the code's step is the
check, so two requests with one code cannot both pass. Wrong codes are failed sign-in attempts: they
count toward the same throttling as passwords (backend/services/auth.py).

Audit. Enrolment, removal, reset, each recovery code used and each wrong code are entries
("two_factor_enrolled", ...); none holds the secret, a code or a recovery code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.audit import event_entry
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, Role, User, user_role
from backend.models.two_factor import Passkey, RecoveryCode

ISSUER = "Custodian"
STEP_SECONDS = 30
CLOCK_SKEW_STEPS = 1  # a code of the step before or after the server's is still accepted
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32: no 0/1/8/9 to misread
# How long a set-up form (its QR code) stays good: time to find the phone, not to leave it open.
ENROLMENT_MINUTES = 15
# How long a session signed in by password only waits for its code.
CHALLENGE_MINUTES = 5

# The audit actions (at most 20 characters, the column's width).
ENROLLED, REMOVED, RESET = "two_factor_enrolled", "two_factor_removed", "two_factor_reset"
PASSED, FAILED, RECOVERY_USED = "two_factor_passed", "two_factor_failed", "recovery_code_used"
RECOVERY_RENEWED = "recovery_renewed"
# Passkeys (backend/services/passkeys.py): the same trail, their own actions.
PASSKEY_ADDED, PASSKEY_REMOVED = "passkey_added", "passkey_removed"
PASSKEY_PASSED, PASSKEY_FAILED = "passkey_passed", "passkey_failed"
EVENTS = (
    ENROLLED,
    REMOVED,
    RESET,
    PASSED,
    FAILED,
    RECOVERY_USED,
    RECOVERY_RENEWED,
    PASSKEY_ADDED,
    PASSKEY_REMOVED,
    PASSKEY_PASSED,
    PASSKEY_FAILED,
)

# Fixed sentences (the admin shows them translated: admin/two_factor.py marks each for the catalog).
CODE_FORMAT = "Enter the 6 digits your authenticator app shows (no spaces), or one of your recovery codes."
WRONG_CODE = "That code is not right, or it was used already. Wait for the next code and try again."
ALREADY_ENROLLED = "Two-factor sign-in is already set up for this account."
NOT_ENROLLED = "Two-factor sign-in is not set up for this account."
ENROLMENT_EXPIRED = "This set-up form has expired or was not made for you. Start again with a new QR code."
MESSAGES = (CODE_FORMAT, WRONG_CODE, ALREADY_ENROLLED, NOT_ENROLLED, ENROLMENT_EXPIRED)

_TOTP_CODE = re.compile(r"[0-9]{6}")
_RECOVERY_CODE = re.compile(rf"[{RECOVERY_CODE_ALPHABET}]{{5}}-?[{RECOVERY_CODE_ALPHABET}]{{5}}")
MAX_CODE_LENGTH = 64  # longer input is refused before anything is looked at

CodeKind = Literal["totp", "recovery"]


def parse_code(text: str) -> tuple[CodeKind, str]:
    """What a typed code is, normalised: ("totp", "123456") or ("recovery", "abcde-fghij").

    Raises `ValidationFailed` (on `code`) for anything else: spaces inside, another length,
    non-ASCII digits.
    """
    value = text.strip()[: MAX_CODE_LENGTH + 1]
    if _TOTP_CODE.fullmatch(value):
        return "totp", value
    lowered = value.lower()
    if len(value) <= MAX_CODE_LENGTH and _RECOVERY_CODE.fullmatch(lowered):
        plain = lowered.replace("-", "")
        return "recovery", f"{plain[:5]}-{plain[5:]}"
    raise ValidationFailed({"code": [CODE_FORMAT]}, CODE_FORMAT)


def _key(settings: Settings, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"custodian " + purpose).derive(
        settings.secret_key.encode()
    )


def _box(settings: Settings) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key(settings, b"totp secret")))


def seal_secret(settings: Settings, secret: str) -> str:
    """The TOTP secret as stored: encrypted under a key derived from SECRET_KEY."""
    return _box(settings).encrypt(secret.encode()).decode()


def open_secret(settings: Settings, sealed: str) -> str:
    return _box(settings).decrypt(sealed.encode()).decode()


def recovery_hash(settings: Settings, user_id: int, code: str) -> str:
    message = f"{user_id}:{code}".encode()
    return hmac.new(_key(settings, b"recovery codes"), message, hashlib.sha256).hexdigest()


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step (within the clock-skew window) whose code is `code`, or None."""
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    step = current_step(now)
    for candidate in range(step - CLOCK_SKEW_STEPS, step + CLOCK_SKEW_STEPS + 1):
        if hmac.compare_digest(totp.at(candidate * STEP_SECONDS), code):
            return candidate
    return None


@dataclass(frozen=True)
class Enrolment:
    """A set-up in progress: shown to the user, stored nowhere until a code confirms it."""

    secret: str
    uri: str  # otpauth://, for the QR code
    form_token: str  # the secret and the user, sealed with a time stamp, carried by the form


@dataclass(frozen=True)
class TwoFactorStatus:
    enrolled_at: datetime | None  # of TOTP
    recovery_codes_left: int
    required: bool
    passkeys: int = 0

    @property
    def has_factor(self) -> bool:
        """TOTP or at least one passkey: sign-in asks for a second step."""
        return self.enrolled_at is not None or self.passkeys > 0


class TwoFactorService:
    """Enrol, check, remove a user's second factor. A user manages their own; resetting another's is
    `UserService.reset_two_factor` (the account-authority rule)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.settings = uow.settings
        self.users = uow.repo(User)

    # Who must ------------------------------------------------------------------------------------

    async def required_for(self, user: User) -> bool:
        """Whether REQUIRE_2FA_FOR or one of the user's roles makes a second factor mandatory."""
        groups = self.settings.two_factor_required_for
        if "everyone" in groups or (user.is_superuser and "superusers" in groups):
            return True
        flagged = (
            select(user_role.c.user_id)
            .join(Role, Role.id == user_role.c.role_id)
            .where(user_role.c.user_id == user.id, Role.requires_two_factor.is_(True))
            .exists()
        )
        return bool(await self.uow.session.scalar(select(flagged)))

    async def status(self, user_id: int) -> TwoFactorStatus:
        """The user's enrolment: when, how many recovery codes remain, whether policy requires one."""
        user = await self._user(user_id)
        left = await self.uow.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return TwoFactorStatus(
            user.totp_enrolled_at,
            int(left or 0),
            await self.required_for(user),
            passkeys=await self._passkey_count(user.id),
        )

    async def has_second_factor(self, user: User) -> bool:
        """Whether sign-in asks `user` for a second step: TOTP set up, or at least one passkey."""
        if user.totp_enrolled_at is not None and user.totp_secret is not None:
            return True
        return await self._passkey_count(user.id) > 0

    # Enrolment -----------------------------------------------------------------------------------

    async def start_enrolment(self, user_id: int) -> Enrolment:
        """A new secret for `user_id` to scan; nothing is stored. Raises `Conflict` when enrolled."""
        user = await self._user(user_id)
        if user.totp_enrolled_at is not None:
            raise Conflict(ALREADY_ENROLLED)
        secret = pyotp.random_base32()
        return self._enrolment(user, secret, seal_secret(self.settings, f"{user.id}:{secret}"))

    async def reopen_enrolment(self, user_id: int, form_token: str) -> Enrolment:
        """The set-up a form carries, to show again after a wrong code; a new one once it expired."""
        user = await self._user(user_id)
        try:
            secret = self._secret_from_form(user.id, form_token)
        except ValidationFailed:
            return await self.start_enrolment(user_id)
        return self._enrolment(user, secret, form_token)

    async def confirm_enrolment(self, user_id: int, form_token: str, code: str) -> list[str]:
        """Store the secret the form carries once `code` proves the app has it; the new recovery codes.

        Returns ten recovery codes, to show once (only their hashes are kept). Raises
        `ValidationFailed` for a malformed or wrong code or an expired or foreign form (nothing is
        stored), `Conflict` when already enrolled.
        """
        user = await self._user(user_id)
        if user.totp_enrolled_at is not None:
            raise Conflict(ALREADY_ENROLLED)
        secret = self._secret_from_form(user.id, form_token)
        kind, value = parse_code(code)
        step = matching_step(secret, value) if kind == "totp" else None
        if step is None:
            self.record(user, FAILED)
            raise ValidationFailed({"code": [WRONG_CODE]}, WRONG_CODE)
        await self._store(
            user,
            totp_secret=seal_secret(self.settings, secret),
            totp_enrolled_at=datetime.now(UTC),
            totp_last_step=step,
        )
        codes = await self._new_recovery_codes(user.id)
        self.record(user, ENROLLED)
        return codes

    async def enrol_with_secret(self, user_id: int, secret: str) -> None:
        """Enrol with a given secret, no code asked: the demo seed's, in development (system only)."""
        if self.uow.actor.kind != "system":
            raise PermissionDenied("Only the system enrols an account without a code.")
        user = await self._user(user_id)
        if user.totp_enrolled_at is not None:
            return
        now = datetime.now(UTC)
        await self._store(
            user, totp_secret=seal_secret(self.settings, secret), totp_enrolled_at=now, totp_last_step=None
        )
        await self._new_recovery_codes(user.id)
        self.record(user, ENROLLED)

    # Checking ------------------------------------------------------------------------------------

    async def check(self, user: User, code: str) -> CodeKind | None:
        """Accept `code` for the enrolled `user` (using it up), or None for a wrong or reused one.

        A wrong code is audited; the caller counts it toward throttling. Raises `ValidationFailed`
        for input that is no code at all, `Conflict` when the user is not enrolled.
        """
        kind, value = parse_code(code)
        if user.totp_enrolled_at is None or user.totp_secret is None:
            raise Conflict(NOT_ENROLLED)
        if kind == "totp":
            accepted = await self._use_step(user, value)
        else:
            accepted = await self._use_recovery_code(user, value)
        if not accepted:
            self.record(user, FAILED)
            return None
        self.record(user, RECOVERY_USED if kind == "recovery" else PASSED)
        return kind

    async def remove(self, user_id: int, code: str) -> bool:
        """The user turns off their own second factor, proving it with a current code.

        Refused (`PermissionDenied`) for another account, and while policy requires one; False
        for a wrong code (nothing removed, the caller counts it toward throttling).
        """
        if self.uow.actor.user_id != user_id:
            raise PermissionDenied("Only the account's owner removes their second factor here.")
        user = await self._user(user_id)
        # A passkey still answers the policy: only the last second factor must stay.
        if await self.required_for(user) and await self._passkey_count(user.id) == 0:
            raise PermissionDenied("Your roles require two-factor sign-in: it cannot be removed.")
        if await self.check(user, code) is None:
            return False
        await self.clear(user)
        self.record(user, REMOVED)
        return True

    async def renew_recovery_codes(self, user_id: int, code: str) -> list[str] | None:
        """Ten new recovery codes for the owner, proven with a current code; the old ones stop working.

        None for a wrong code (nothing renewed; audited, the caller counts it toward throttling).
        Raises `PermissionDenied` for another account, `Conflict` when no app is set up (recovery
        codes belong to it), `ValidationFailed` for input that is no code.
        """
        if self.uow.actor.user_id != user_id:
            raise PermissionDenied("Only the account's owner renews their recovery codes.")
        user = await self._user(user_id)
        if await self.check(user, code) is None:
            return None
        codes = await self._new_recovery_codes(user.id)
        self.record(user, RECOVERY_RENEWED)
        return codes

    async def clear(self, user: User) -> None:
        """Forget the user's secret and recovery codes (the owner turns the authenticator app off)."""
        await self._store(user, totp_secret=None, totp_enrolled_at=None, totp_last_step=None)
        await self.uow.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))

    async def forget_every_factor(self, user: User) -> None:
        """An administrator's reset: the app, the recovery codes and every passkey. A lost or stolen
        device must not keep the account's second factor, nor hold its owner out."""
        await self.clear(user)
        await self.uow.session.execute(delete(Passkey).where(Passkey.user_id == user.id))

    async def set_role_requirement(self, role_name: str, *, required: bool) -> Role:
        """Make the role's holders need a second factor, or not (needs `role.change`); audited."""
        self.uow.actor.require("role.change")
        role = await self.uow.repo(Role).get_by(name=role_name.strip())
        if role is None:
            raise NotFound(f"No role named {role_name}.")
        if role.requires_two_factor != required:
            role.requires_two_factor = required
            await self.uow.flush()  # the audit trail records the change as an update of the role
        return role

    def record(
        self,
        user: User,
        action: str,
        *,
        actor: Actor | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """An audit entry about `user`'s second factor; never the secret, a code, a key or a challenge
        (`changes` names what it was about: a passkey's name)."""
        by = actor or self.uow.actor
        if by.user_id is None and by.kind != "system":
            by = Actor(user_id=user.id, username=user.username, client_address=by.client_address)
        entry = event_entry(
            by, action=action, model="user", object_id=user.id, object_repr=user.username, changes=changes
        )
        self.uow.repo(AuditEntry).stage(entry)

    # Helpers -------------------------------------------------------------------------------------

    async def _store(self, user: User, **values: object) -> None:
        # Not an edit of the account (no version bump, no row-diff audit: the events say what
        # happened); the loaded object is kept in step, for what reads it later in this unit of work.
        await self.users.set_columns(user.id, **values)
        for name, value in values.items():
            set_committed_value(user, name, value)

    async def _passkey_count(self, user_id: int) -> int:
        total = await self.uow.session.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        )
        return int(total or 0)

    async def _user(self, user_id: int) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        return user

    def _enrolment(self, user: User, secret: str, form_token: str) -> Enrolment:
        totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
        uri = totp.provisioning_uri(name=user.username, issuer_name=ISSUER)
        return Enrolment(secret=secret, uri=uri, form_token=form_token)

    def _secret_from_form(self, user_id: int, form_token: str) -> str:
        try:
            plain = _box(self.settings).decrypt(form_token.encode(), ttl=ENROLMENT_MINUTES * 60).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise ValidationFailed({"code": [ENROLMENT_EXPIRED]}, ENROLMENT_EXPIRED) from None
        owner, _, secret = plain.partition(":")
        if owner != str(user_id) or not secret:
            raise ValidationFailed({"code": [ENROLMENT_EXPIRED]}, ENROLMENT_EXPIRED)
        return secret

    async def _use_step(self, user: User, code: str) -> bool:
        step = matching_step(open_secret(self.settings, user.totp_secret or ""), code)
        if step is None:
            return False
        # The check and the use in one statement: of two requests with one code, one moves the step.
        last = User.totp_last_step
        result = await self.uow.session.execute(
            update(User)
            .where(User.id == user.id, (last.is_(None)) | (last < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            return False
        set_committed_value(user, "totp_last_step", step)
        return True

    async def _use_recovery_code(self, user: User, code: str) -> bool:
        result = await self.uow.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == recovery_hash(self.settings, user.id, code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def _new_recovery_codes(self, user_id: int) -> list[str]:
        await self.uow.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        codes = []
        for _ in range(RECOVERY_CODE_COUNT):
            plain = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(10))
            codes.append(f"{plain[:5]}-{plain[5:]}")
        for code in codes:
            self.uow.repo(RecoveryCode).stage(
                RecoveryCode(user_id=user_id, code_hash=recovery_hash(self.settings, user_id, code))
            )
        await self.uow.flush()
        return codes


def challenge_expiry(now: datetime, factor: str) -> datetime:
    """When a password-only session ends: minutes for a code, longer to set up an app."""
    return now + timedelta(minutes=ENROLMENT_MINUTES if factor == "enrol" else CHALLENGE_MINUTES)
