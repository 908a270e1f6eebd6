"""`describe_violation` on driver errors built by hand: which constraint, which columns, on both databases.

No database: the errors are shaped as each driver raises them. SQLite puts
everything in the message; asyncpg (wrapped by SQLAlchemy's adapter) names
the constraint and the SQLSTATE on the exception that caused the adapter's.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError

from backend.db.integrity import Violation, describe_violation
from backend.models import Category, Product

PRODUCT = Product.__table__
CATEGORY = Category.__table__


class AsyncpgError(Exception):
    """The attributes asyncpg sets from the server's error fields."""

    def __init__(self, sqlstate: str, *, constraint_name: str | None = None, column_name: str | None = None):
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate
        self.constraint_name = constraint_name
        self.column_name = column_name


def postgres_error(sqlstate: str, **fields: str) -> IntegrityError:
    adapted = Exception("<class 'asyncpg.exceptions.IntegrityConstraintViolationError'>")
    adapted.__cause__ = AsyncpgError(sqlstate, **fields)
    return IntegrityError("INSERT ...", {}, adapted)


def sqlite_error(message: str) -> IntegrityError:
    return IntegrityError("INSERT ...", {}, sqlite3.IntegrityError(message))


def test_sqlite_unique_names_the_columns() -> None:
    violation = describe_violation(sqlite_error("UNIQUE constraint failed: product.sku"), PRODUCT)
    assert violation == Violation("unique", None, ("sku",))


def test_sqlite_unique_over_several_columns() -> None:
    error = sqlite_error("UNIQUE constraint failed: category.parent_id, category.slug")
    assert describe_violation(error, CATEGORY).columns == ("parent_id", "slug")


def test_postgres_unique_maps_its_partial_index_to_the_columns() -> None:
    violation = describe_violation(postgres_error("23505", constraint_name="uq_product_sku"), PRODUCT)
    assert violation == Violation("unique", "uq_product_sku", ("sku",))


def test_postgres_foreign_key_names_the_column_of_the_constraint() -> None:
    names = [c.name for c in PRODUCT.foreign_key_constraints if "category" in str(c.name)]
    violation = describe_violation(postgres_error("23503", constraint_name=str(names[0])), PRODUCT)
    assert violation == Violation("foreign_key", names[0], ("category_id",))


def test_sqlite_foreign_key_has_no_name_to_go_by() -> None:
    violation = describe_violation(sqlite_error("FOREIGN KEY constraint failed"), PRODUCT)
    assert violation == Violation("foreign_key", None, ())


def test_check_constraints_are_named_on_both_databases() -> None:
    from_sqlite = describe_violation(
        sqlite_error("CHECK constraint failed: ck_product_price_positive"), PRODUCT
    )
    from_postgres = describe_violation(
        postgres_error("23514", constraint_name="ck_product_price_positive"), PRODUCT
    )
    assert from_sqlite == from_postgres == Violation("check", "ck_product_price_positive", ())


def test_not_null_names_the_column() -> None:
    from_sqlite = describe_violation(sqlite_error("NOT NULL constraint failed: product.name"), PRODUCT)
    from_postgres = describe_violation(postgres_error("23502", column_name="name"), PRODUCT)
    assert from_sqlite.columns == from_postgres.columns == ("name",)
    assert from_sqlite.kind == from_postgres.kind == "not_null"


def test_an_unknown_constraint_or_error_is_other_and_names_nothing() -> None:
    unknown_index = describe_violation(postgres_error("23505", constraint_name="uq_gone"), PRODUCT)
    assert unknown_index == Violation("unique", "uq_gone", ())
    assert describe_violation(postgres_error("23P01"), PRODUCT) == Violation("other", None, ())
