"""A model's policy: who gets its permissions, which of its fields are sensitive, how it is shown.

One typed declaration on the model class, read by permission sync, the
masking rule, the audit trail, record history and the admin's start-up check:

    class Supplier(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
        policy = Policy(group="catalog", pii={"email", "phone"})
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

GROUPS = ("catalog", "business", "accounts")
VIEW_PII = "view_pii"
_ACTION = re.compile(r"[a-z][a-z0-9_]*")


def _names(values: Iterable[str], argument: str) -> tuple[str, ...]:
    # A bare string is an iterable of characters: almost surely a missing tuple comma.
    if isinstance(values, str):
        raise TypeError(f"Policy {argument} takes a collection of names, not the string {values!r}.")
    return tuple(values)


@dataclass(frozen=True, init=False)
class Policy:
    """What a model declares about itself; every argument is optional and keyword-only.

    - `group`: which built-in roles get its permissions by default: "catalog",
      "business" (the default) or "accounts".
    - `permissions`: extra actions besides view/add/change/delete/restore/purge/export,
      e.g. `("publish",)` -> `<table>.publish`.
    - `pii`: personal data, shown only to holders of `<table>.view_pii`; declaring
      any implies the `view_pii` action.
    - `secret`: fields shown to nobody, never exported, redacted in the audit trail.
    - `history_children`: child table -> its key to this model; the record's
      history weaves in the children's entries (an order's items).
    - `admin`: False for a model with no admin view of its own (audit, sessions).
    - `natural_key`: a unique column people know a record by (a SKU, an email,
      a slug): imports match rows on it, files name related records by it,
      fixtures carry it. Without one, records are matched by id.
    """

    group: str = "business"
    permissions: tuple[str, ...] = ()
    pii: frozenset[str] = frozenset()
    secret: frozenset[str] = frozenset()
    # Excluded from the hash: a mapping is not hashable, and the other fields identify the policy.
    history_children: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    admin: bool = True
    natural_key: str | None = None

    def __init__(
        self,
        *,
        group: str = "business",
        permissions: Iterable[str] = (),
        pii: Iterable[str] = (),
        secret: Iterable[str] = (),
        history_children: Mapping[str, str] | None = None,
        admin: bool = True,
        natural_key: str | None = None,
    ) -> None:
        if group not in GROUPS:
            raise ValueError(f"Policy group must be one of {', '.join(GROUPS)}, not {group!r}.")
        actions = _names(permissions, "permissions")
        pii_fields = frozenset(_names(pii, "pii"))
        secret_fields = frozenset(_names(secret, "secret"))
        if pii_fields & secret_fields:
            both = ", ".join(sorted(pii_fields & secret_fields))
            raise ValueError(f"A field is either personal data or a secret, not both: {both}.")
        for action in actions:
            if not _ACTION.fullmatch(action):
                raise ValueError(f"A permission action is lower_snake_case: {action!r}.")
        if pii_fields and VIEW_PII not in actions:
            actions = (*actions, VIEW_PII)  # personal data is useless without a way to grant seeing it
        # Frozen: the generated __setattr__ refuses, so fields are set the way dataclasses do it.
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "permissions", tuple(dict.fromkeys(actions)))
        object.__setattr__(self, "pii", pii_fields)
        object.__setattr__(self, "secret", secret_fields)
        object.__setattr__(self, "history_children", MappingProxyType(dict(history_children or {})))
        object.__setattr__(self, "admin", bool(admin))
        if natural_key is not None and not _ACTION.fullmatch(natural_key):
            raise ValueError(f"A natural key names one column: {natural_key!r}.")
        object.__setattr__(self, "natural_key", natural_key)

    @property
    def sensitive(self) -> frozenset[str]:
        """Fields some actor may not see: personal data and secrets."""
        return self.pii | self.secret


DEFAULT_POLICY = Policy()


def policy_of(model: type | object) -> Policy:
    """The policy of a model class or instance; the default policy for anything that declares none."""
    policy = getattr(model, "policy", None)
    return policy if isinstance(policy, Policy) else DEFAULT_POLICY
