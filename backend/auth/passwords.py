"""Password hashing (argon2id through libpass's CryptContext) and the password policy."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from passlib.context import CryptContext

from backend.config import Settings

_COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# The longest password accepted anywhere (set, create, sign-in). Hashing is
# only ever asked of bounded input: argon2 through passlib refuses secrets
# over 4096 bytes, and a megabyte of password is a denial-of-service lever.
MAX_PASSWORD_LENGTH = 1024


class PasswordHasher:
    """Hashes and verifies passwords with argon2id at the configured cost."""

    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            deprecated="auto",
            argon2__type="ID",
            argon2__memory_cost=memory_kib,
            argon2__rounds=time_cost,
            argon2__parallelism=1,
        )
        # Verified against when the user does not exist, so that an unknown
        # username costs the same time as a wrong password.
        self._dummy_hash = self._context.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        """The hash of `password`; `ValueError` beyond `MAX_PASSWORD_LENGTH` (the policy refuses it first)."""
        if password_too_long(password):
            raise ValueError(f"A password has at most {MAX_PASSWORD_LENGTH} characters.")
        return str(self._context.hash(password))

    def verify_and_update(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Check `password`; also return a new hash when the stored one uses old settings.

        An empty or unknown stored hash never verifies, but still costs one
        full verification. A password over `MAX_PASSWORD_LENGTH` never
        verifies and is not hashed.
        """
        if password_too_long(password):
            return False, None
        if not password_hash or not self._context.identify(password_hash):
            self._context.verify(password, self._dummy_hash)
            return False, None
        verified, new_hash = self._context.verify_and_update(password, password_hash)
        return bool(verified), (str(new_hash) if new_hash else None)

    def spend_verification_time(self, password: str) -> None:
        """Burn one verification for a user who does not exist."""
        if not password_too_long(password):
            self._context.verify(password, self._dummy_hash)


@lru_cache(maxsize=4)
def _hasher(memory_kib: int, time_cost: int) -> PasswordHasher:
    return PasswordHasher(memory_kib=memory_kib, time_cost=time_cost)


def hasher_for(settings: Settings) -> PasswordHasher:
    """The process's hasher for these settings (built once: hashing a dummy costs time)."""
    return _hasher(settings.password_hash_memory_kib, settings.password_hash_time_cost)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    lines = _COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def password_too_long(password: str) -> bool:
    return len(password) > MAX_PASSWORD_LENGTH


def password_problems(password: str, *, username: str, min_length: int) -> list[str]:
    """Why `password` is unacceptable; an empty list when it is fine."""
    problems = []
    if len(password) < min_length:
        problems.append(f"Use at least {min_length} characters.")
    if password_too_long(password):
        problems.append(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
        return problems  # the other checks need not look at megabytes
    if username and password.strip().lower() == username.strip().lower():
        problems.append("The password must not be the same as the username.")
    if password.strip().lower() in _common_passwords():
        problems.append("This password is too common; choose another.")
    return problems
