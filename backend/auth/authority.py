"""The account-authority rule: nobody manages an account that holds more than they do.

Managing an account is changing its password, roles, flags (active,
superuser) or other fields, ending its sessions, deleting, restoring or
purging it. An actor may manage an account only when they hold every
permission it holds; a superuser account holds every permission, so only a
superuser manages a superuser. Anyone may manage their own account, within
the other rules (nobody deactivates or deletes themselves, nobody gives
roles or superuser status beyond their own). The system actor (the CLI) is
a superuser. The admin and the CLI both ask this rule through `UserService`.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.auth.actor import Actor
from backend.errors import PermissionDenied

# How many lacking permissions a refusal names before it says "and N more".
NAMED_AT_MOST = 5


@dataclass(frozen=True)
class Account:
    """What the rule looks at in the account acted on."""

    user_id: int
    username: str
    is_superuser: bool
    permissions: frozenset[str]


def authority_problem(actor: Actor, account: Account, *, doing: str = "change the account of") -> str | None:
    """Why `actor` may not `doing` `account`, as a sentence for them; None when they may.

    `doing` reads before the username: "change the password of", "delete".
    """
    if actor.user_id is not None and actor.user_id == account.user_id:
        return None
    if actor.is_superuser:
        return None
    if account.is_superuser:
        return f"Only a superuser can {doing} {account.username}: {account.username} is a superuser."
    lacking = sorted(codename for codename in account.permissions if not actor.has_perm(codename))
    if lacking:
        return (
            f"You cannot {doing} {account.username}: {account.username} holds permissions "
            f"you do not have ({_listed(lacking)})."
        )
    return None


def require_authority(actor: Actor, account: Account, *, doing: str = "change the account of") -> None:
    """Raise `PermissionDenied` with `authority_problem`'s sentence when there is one."""
    problem = authority_problem(actor, account, doing=doing)
    if problem:
        raise PermissionDenied(problem)


def _listed(codenames: list[str]) -> str:
    shown = ", ".join(codenames[:NAMED_AT_MOST])
    more = len(codenames) - NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown
