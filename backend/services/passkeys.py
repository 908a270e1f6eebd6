"""Passkeys (WebAuthn) as a second factor, beside or instead of TOTP (backend/services/two_factor.py).

Verification is py_webauthn's (`webauthn`): it parses the CBOR attestation and authenticator data,
decodes the COSE public key, checks the challenge, origin, RP id hash, flags, signature and counter.
Nothing here parses CBOR or COSE by hand. Attestation is "none": any authenticator may register.

Challenges. Options carry a random challenge; the server keeps nothing until the answer comes back:
the challenge, its user and its purpose travel in a token signed with a key derived from SECRET_KEY
(itsdangerous), good for `CHALLENGE_SECONDS`. A sign-in challenge is also bound to the pending
session and carries when it was issued; a passkey's `last_used_at` moves past that time in the one
UPDATE that accepts the answer, so a challenge (and any issued before it) is good for one use.

Audit. Each passkey added or removed and each refused or accepted sign-in is an entry
("passkey_added", ...); none holds a key, a credential id or a challenge.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, func, select, update

from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import User
from backend.models.two_factor import Passkey
from backend.services import two_factor
from backend.services.two_factor import TwoFactorService

# webauthn (with cbor2, pyOpenSSL, asn1) is imported by the functions that run a ceremony, not here:
# loaded at start-up it added about 15 MB to every server, worker and command that never sees a passkey.
if TYPE_CHECKING:
    from webauthn.helpers.structs import (
        AuthenticationCredential,
        PublicKeyCredentialDescriptor,
        RegistrationCredential,
    )

RP_NAME = "Custodian"
CHALLENGE_SECONDS = 300  # time to touch the key or unlock the phone, not to leave the page open
MAX_NAME_LENGTH = 64
MAX_PASSKEYS = 20  # per user: more is a mistake (or a script), and each is one more allowCredentials entry
MAX_CREDENTIAL_CHARS = 64_000  # a browser's answer is a few kilobytes; larger input is refused unread
REGISTER, SIGN_IN = "register", "sign-in"

# Fixed sentences (the admin shows them translated: admin/passkeys.py marks each for the catalog).
NAME_NEEDED = "Give the passkey a name (at most 64 characters), e.g. the device that holds it."
NAME_TAKEN = "You already have a passkey with this name."
TOO_MANY = "You have 20 passkeys already: remove one before adding another."
CHALLENGE_EXPIRED = "This passkey request has expired or was not made for you. Try again."
BAD_RESPONSE = "The browser's answer is not a passkey response. Try again."
NOT_VERIFIED = "The passkey could not be verified. Try again, or use another passkey."
ALREADY_REGISTERED = "This passkey is registered already."
NO_PASSKEYS = "No passkey is registered for this account."
LAST_FACTOR = "Your roles require two-factor sign-in: this passkey is your last second factor."
MESSAGES = (
    NAME_NEEDED,
    NAME_TAKEN,
    TOO_MANY,
    CHALLENGE_EXPIRED,
    BAD_RESPONSE,
    NOT_VERIFIED,
    ALREADY_REGISTERED,
    NO_PASSKEYS,
    LAST_FACTOR,
)


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for: the host name (RP id) and the origin the browser signs."""

    id: str
    origin: str


@dataclass(frozen=True)
class Ceremony:
    """Options for `navigator.credentials.create()` or `.get()` (JSON, base64url fields) and the
    signed token that the answer must come back with."""

    options: dict[str, Any]
    challenge_token: str


def check_name(text: str) -> str:
    """The name as kept: trimmed, 1 to 64 printable characters. Raises `ValidationFailed` (`name`)."""
    name = " ".join(text.split())
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValidationFailed({"name": [NAME_NEEDED]}, NAME_NEEDED)
    return name


class PasskeyService:
    """Register, list, remove a user's passkeys, and check one at sign-in.

    A user manages only their own passkeys, signed in fully (not halfway through sign-in);
    checking one at sign-in is `AuthService.pass_passkey`'s, for a session waiting for a second
    factor.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.settings = uow.settings

    # Reading -------------------------------------------------------------------------------------

    async def list(self, user_id: int) -> list[Passkey]:
        """The user's passkeys, oldest first."""
        found = await self.uow.session.scalars(
            select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
        )
        return list(found)

    async def count(self, user_id: int) -> int:
        total = await self.uow.session.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        )
        return int(total or 0)

    async def counts(self, user_ids: Collection[int]) -> dict[int, int]:
        """How many passkeys each of these users holds (users without one are left out)."""
        if not user_ids:
            return {}
        rows = await self.uow.session.execute(
            select(Passkey.user_id, func.count())
            .where(Passkey.user_id.in_(list(user_ids)))
            .group_by(Passkey.user_id)
        )
        return {int(user_id): int(count) for user_id, count in rows.all()}

    # Registration --------------------------------------------------------------------------------

    async def registration_options(self, user_id: int, name: str, rp: RelyingParty) -> Ceremony:
        """Options to create a passkey called `name` for the signed-in user (their own account).

        Raises `PermissionDenied` for another account, `ValidationFailed` (`name`) for a missing,
        too long or taken name, `Conflict` past `MAX_PASSKEYS`.
        """
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        user = await self._own(user_id)
        name = await self._free_name(user.id, name)
        existing = await self.list(user.id)
        if len(existing) >= MAX_PASSKEYS:
            raise Conflict(TOO_MANY)
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=rp.id,
            rp_name=RP_NAME,
            user_name=user.username,
            user_id=f"custodian:{user.id}".encode(),
            challenge=challenge,
            timeout=CHALLENGE_SECONDS * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(passkey) for passkey in existing],
        )
        token = self._serializer(REGISTER).dumps(
            {"u": user.id, "c": bytes_to_base64url(challenge), "n": name}
        )
        return Ceremony(json.loads(options_to_json(options)), token)

    async def register(
        self, user_id: int, challenge_token: str, credential: object, rp: RelyingParty
    ) -> Passkey:
        """Keep the passkey the browser created for the options `challenge_token` came with.

        Raises `PermissionDenied` for another account, `ValidationFailed` for an expired or
        foreign challenge, input that is no registration response or one that fails
        verification (wrong origin, RP id or challenge), `Conflict` for a passkey registered
        already or a name taken meanwhile. Audited as "passkey_added" with the name.
        """
        from webauthn import verify_registration_response
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.exceptions import WebAuthnException

        user = await self._own(user_id)
        claims = self._claims(REGISTER, challenge_token, user.id)
        name = await self._free_name(user.id, str(claims.get("n", "")))
        parsed = _registration(credential)
        try:
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=_challenge(claims),
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
            )
        except WebAuthnException:
            raise ValidationFailed({"credential": [NOT_VERIFIED]}, NOT_VERIFIED) from None
        credential_id = bytes_to_base64url(verified.credential_id)
        taken = await self.uow.session.scalar(
            select(Passkey.id).where(Passkey.credential_id == credential_id)
        )
        if taken is not None:
            raise Conflict(ALREADY_REGISTERED)
        transports = ",".join(sorted({t.value for t in parsed.response.transports or []}))
        passkey = Passkey(
            user_id=user.id,
            name=name,
            credential_id=credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=transports[:200],
            created_at=datetime.now(UTC),
        )
        self.uow.session.add(passkey)
        await self.uow.flush()
        TwoFactorService(self.uow).record(user, two_factor.PASSKEY_ADDED, changes={"passkey": [None, name]})
        return passkey

    # Removal -------------------------------------------------------------------------------------

    async def remove(self, user_id: int, passkey_id: int) -> str:
        """The signed-in user removes one of their passkeys; its name.

        Raises `PermissionDenied` for another account's, and when policy requires a second factor
        and this is the last one (no TOTP, no other passkey); `NotFound` when the user has no such
        passkey. Audited as "passkey_removed" with the name.
        """
        user = await self._own(user_id)
        passkey = await self.uow.session.scalar(
            select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user.id)
        )
        if passkey is None:
            raise NotFound("You have no such passkey: it may have been removed already.")
        factors = await self.count(user.id) + (1 if user.totp_enrolled_at is not None else 0)
        if factors <= 1 and await TwoFactorService(self.uow).required_for(user):
            raise PermissionDenied(LAST_FACTOR)
        name = passkey.name
        await self.uow.session.execute(
            delete(Passkey).where(Passkey.id == passkey.id).execution_options(synchronize_session=False)
        )
        self.uow.session.expunge(passkey)
        TwoFactorService(self.uow).record(user, two_factor.PASSKEY_REMOVED, changes={"passkey": [name, None]})
        return name

    # Sign-in -------------------------------------------------------------------------------------

    async def authentication_options(self, user: User, *, session_key: str, rp: RelyingParty) -> Ceremony:
        """Options to sign `user` in with one of their passkeys (only theirs are allowed), for the
        pending session `session_key`. Raises `Conflict` when they have none."""
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.structs import UserVerificationRequirement

        passkeys = await self.list(user.id)
        if not passkeys:
            raise Conflict(NO_PASSKEYS)
        challenge = secrets.token_bytes(32)
        options = generate_authentication_options(
            rp_id=rp.id,
            challenge=challenge,
            timeout=CHALLENGE_SECONDS * 1000,
            allow_credentials=[_descriptor(passkey) for passkey in passkeys],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        payload = {"u": user.id, "c": bytes_to_base64url(challenge), "s": session_key, "t": time.time()}
        return Ceremony(json.loads(options_to_json(options)), self._serializer(SIGN_IN).dumps(payload))

    async def verify_assertion(
        self, user: User, challenge_token: str, credential: object, *, session_key: str, rp: RelyingParty
    ) -> bool:
        """Accept the browser's answer to the sign-in options `challenge_token` came with, or not.

        False (audited as "passkey_failed"; the caller counts it toward throttling) for a passkey
        that is not one of `user`'s, a failed verification (signature, origin, RP id, challenge,
        a counter that did not move forward) and a challenge used already. Raises
        `ValidationFailed` for an expired challenge, one made for another user or session, and
        input that is no sign-in response (nothing is counted).
        """
        from webauthn import verify_authentication_response
        from webauthn.helpers import bytes_to_base64url
        from webauthn.helpers.exceptions import WebAuthnException

        claims = self._claims(SIGN_IN, challenge_token, user.id)
        if claims.get("s") != session_key:
            raise ValidationFailed({"credential": [CHALLENGE_EXPIRED]}, CHALLENGE_EXPIRED)
        parsed = _assertion(credential)
        passkey = await self.uow.session.scalar(
            select(Passkey).where(
                Passkey.credential_id == bytes_to_base64url(parsed.raw_id), Passkey.user_id == user.id
            )
        )
        if passkey is None:
            return self._failed(user, "not a passkey of this account")
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=_challenge(claims),
                expected_rp_id=rp.id,
                expected_origin=rp.origin,
                credential_public_key=bytes(passkey.public_key),
                credential_current_sign_count=passkey.sign_count,
            )
        except WebAuthnException:
            return self._failed(user, "not verified", name=passkey.name)
        issued = datetime.fromtimestamp(float(claims.get("t", 0)), UTC)
        now = datetime.now(UTC)
        # The check and the use in one statement: of two answers to one challenge, one moves the time.
        used = Passkey.last_used_at
        result = await self.uow.session.execute(
            update(Passkey)
            .where(Passkey.id == passkey.id, used.is_(None) | (used < issued))
            .values(sign_count=verified.new_sign_count, last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            return self._failed(user, "challenge used already", name=passkey.name)
        TwoFactorService(self.uow).record(
            user, two_factor.PASSKEY_PASSED, changes={"passkey": [None, passkey.name]}
        )
        return True

    # Helpers -------------------------------------------------------------------------------------

    async def _own(self, user_id: int) -> User:
        if self.uow.actor.user_id is None or self.uow.actor.user_id != user_id:
            raise PermissionDenied("Only the account's owner, signed in, manages their passkeys.")
        user = await self.uow.repo(User).get(user_id)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        return user

    async def _free_name(self, user_id: int, text: str) -> str:
        name = check_name(text)
        taken = await self.uow.session.scalar(
            select(Passkey.id).where(Passkey.user_id == user_id, Passkey.name == name)
        )
        if taken is not None:
            raise ValidationFailed({"name": [NAME_TAKEN]}, NAME_TAKEN)
        return name

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.settings.secret_key, salt=f"custodian passkey {purpose}")

    def _claims(self, purpose: str, token: str, user_id: int) -> dict[str, Any]:
        try:
            claims = self._serializer(purpose).loads(token[:4000], max_age=CHALLENGE_SECONDS)
        except BadData:
            claims = None
        if not isinstance(claims, dict) or claims.get("u") != user_id or not isinstance(claims.get("c"), str):
            raise ValidationFailed({"credential": [CHALLENGE_EXPIRED]}, CHALLENGE_EXPIRED)
        return claims

    def _failed(self, user: User, reason: str, *, name: str | None = None) -> bool:
        changes: dict[str, Any] = {"reason": [None, reason]}
        if name is not None:
            changes["passkey"] = [None, name]
        TwoFactorService(self.uow).record(user, two_factor.PASSKEY_FAILED, changes=changes)
        return False


def _challenge(claims: dict[str, Any]) -> bytes:
    from webauthn.helpers import base64url_to_bytes

    return base64url_to_bytes(str(claims["c"]))


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    transports = []
    for value in filter(None, passkey.transports.split(",")):
        try:
            transports.append(AuthenticatorTransport(value))
        except ValueError:
            continue  # a hint this library version does not know: leave it out
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(passkey.credential_id), transports=transports or None
    )


def _json_object(credential: object) -> dict[str, Any]:
    """The browser's answer as a JSON object of bounded size, else `ValidationFailed`."""
    if isinstance(credential, dict):
        try:
            size = len(json.dumps(credential))
        except (TypeError, ValueError):
            size = MAX_CREDENTIAL_CHARS + 1
        if size <= MAX_CREDENTIAL_CHARS:
            return credential
    raise ValidationFailed({"credential": [BAD_RESPONSE]}, BAD_RESPONSE)


def _registration(credential: object) -> RegistrationCredential:
    from webauthn.helpers import parse_registration_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        return parse_registration_credential_json(_json_object(credential))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise ValidationFailed({"credential": [BAD_RESPONSE]}, BAD_RESPONSE) from None


def _assertion(credential: object) -> AuthenticationCredential:
    from webauthn.helpers import parse_authentication_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        return parse_authentication_credential_json(_json_object(credential))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise ValidationFailed({"credential": [BAD_RESPONSE]}, BAD_RESPONSE) from None
