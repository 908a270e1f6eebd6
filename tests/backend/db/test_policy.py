"""A model's policy: normalised, checked when declared, and the only thing the readers look at."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from backend.auth.permissions import admin_models, model_permission_specs, permission_specs
from backend.db.policy import Policy, policy_of
from backend.models import AuditEntry, Customer, Order, Product, User
from backend.services import masking

MODEL_ACTIONS = ("view", "add", "change", "delete", "restore", "purge", "export", "import")
# The codenames before policies replaced the dunders: migrations and roles refer to them.
GROUPS = {
    "category": "catalog",
    "customer": "business",
    "order": "business",
    "order_item": "business",
    "product": "catalog",
    "role": "accounts",
    "tag": "catalog",
    "user": "accounts",
}


def test_iterables_are_normalised_and_the_policy_is_hashable() -> None:
    policy = Policy(permissions=["publish", "publish"], pii=["email"], secret=("token",))
    assert policy.permissions == ("publish", "view_pii")  # repeats dropped; pii implies view_pii
    assert policy.pii == frozenset({"email"}) and policy.secret == frozenset({"token"})
    assert policy.sensitive == {"email", "token"}
    assert isinstance(policy.history_children, MappingProxyType)
    assert hash(policy) == hash(Policy(permissions=("publish",), pii={"email"}, secret={"token"}))
    with pytest.raises(AttributeError):
        policy.admin = False  # type: ignore[misc]  # frozen: the assignment is what is tested


def test_children_mapping_is_copied_and_read_only() -> None:
    children = {"order_item": "order_id"}
    policy = Policy(history_children=children)
    children["other"] = "x"
    assert dict(policy.history_children) == {"order_item": "order_id"}
    with pytest.raises(TypeError):
        policy.history_children["x"] = "y"  # type: ignore[index]  # read-only: the assignment is what is tested


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"group": "sales"}, "Policy group must be one of catalog, business, accounts"),
        ({"pii": {"email"}, "secret": {"email"}}, "either personal data or a secret, not both: email"),
        ({"permissions": ("Publish",)}, "lower_snake_case"),
    ],
)
def test_a_wrong_declaration_fails_when_the_model_is_defined(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**arguments)  # type: ignore[arg-type]  # values checked at run time


def test_a_bare_string_is_refused_not_split_into_letters() -> None:
    with pytest.raises(TypeError, match="collection of names"):
        Policy(pii="email")
    with pytest.raises(TypeError, match="collection of names"):
        Policy(permissions="publish")


def test_policy_of_reads_classes_and_instances_and_defaults_for_anything_else() -> None:
    assert policy_of(User).secret == {"password_hash", "totp_secret"} and policy_of(User).group == "accounts"
    assert policy_of(User(username="u")) is policy_of(User)
    assert policy_of(Order).history_children == {"order_item": "order_id"}
    assert policy_of(AuditEntry).admin is False
    assert policy_of(None) == Policy() == policy_of(object())

    class Declared:
        policy = Policy(pii={"email"})

    class NotAPolicy:
        policy = "catalog"

    assert policy_of(Declared).pii == {"email"}
    assert policy_of(NotAPolicy) == Policy()


def test_generated_permissions_are_the_ones_migrations_and_roles_know() -> None:
    assert {str(model.__tablename__) for model in admin_models()} == set(GROUPS)
    specs = {spec.codename: spec.group for spec in permission_specs() if spec.table}
    expected = {f"{table}.{action}": group for table, group in GROUPS.items() for action in MODEL_ACTIONS}
    expected["customer.view_pii"] = "business"  # from `pii`, no separate declaration
    assert specs == expected
    assert [spec.description for spec in model_permission_specs(Customer)][
        -1
    ] == "Can view pii customer records"


def test_masking_reads_the_policy() -> None:
    assert masking.pii_fields(Customer) == {"email", "phone", "address"}
    assert masking.secret_fields(User) == {"password_hash", "totp_secret"}
    assert masking.pii_fields(Product) == frozenset() and masking.secret_fields("not a model") == frozenset()
