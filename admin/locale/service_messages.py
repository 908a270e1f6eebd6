"""The services' sentences the admin shows, as patterns: one catalog, translated in one place.

The services speak English (the CLI prints their messages as they are) and never import the
admin, so a refusal such as "A user named ada already exists." reaches a page in English. Each
pattern below is such a sentence with its values as placeholders; admin/i18n.py matches a
message against all of them and shows the German pattern with the values put back, wherever the
admin translates a message (`i18n.gettext`: flash messages, form errors, error pages).

- A placeholder in `MODEL_NAME_VALUES` holds a model's name ("product", "order item"): it is
  shown as the catalog names the model ("Produkt").
- A placeholder in `REASON_VALUES` holds another message of the catalog (a service sentence, a
  column's label such as "SKU"): it is translated too.
- A placeholder in `NUMBER_VALUES` matches a number only; every value is shown as it is.
- Any other value (a name, a SKU, a date) is shown as it is.

A sentence without values needs no pattern: its msgid in custodian.po is its translation (see
`FIXED_MESSAGES` in names.py). Add a pattern here, then its German entry to custodian.po;
tests/admin/test_i18n.py checks that every pattern has one with the same placeholders.
"""

from __future__ import annotations

MODEL_NAME_VALUES = frozenset({"noun", "thing"})
REASON_VALUES = frozenset({"reason", "label"})
NUMBER_VALUES = frozenset({"id", "count", "minimum", "maximum", "limit"})


def _(message: str) -> str:
    return message


SERVICE_MESSAGES = (
    # Records that clash, are missing, or are in the way (backend/services/base.py, references.py).
    _("A %(noun)s with this %(field)s already exists."),
    _("A category with the slug %(value)s already exists."),
    _("A tag named %(value)s already exists."),
    _("A product with the SKU %(value)s already exists."),
    _("A customer with the email %(value)s already exists."),
    _("A role named %(value)s already exists."),
    _("A user named %(value)s already exists."),
    _("%(noun)s %(id)s does not exist."),
    _("No such %(noun)s exists."),
    _("No such %(noun)s: %(ids)s."),
    _("Choose an existing %(noun)s."),
    _("There is no deleted %(noun)s %(id)s."),
    _("%(noun)s records are not kept in the trash."),
    _("No history for %(noun)s %(id)s."),
    _("A %(noun)s cannot be deleted."),
    _("This %(noun)s cannot be purged: other records still refer to it."),
    _("Cannot restore this %(noun)s: %(reason)s"),
    _("Restore %(records)s first: this %(noun)s refers to it, and it is in the trash."),
    _("Restore %(records)s first: this %(noun)s refers to them, and they are in the trash."),
    _("The %(noun)s refers to a record that does not exist."),
    _("The %(noun)s breaks a rule (%(rule)s)."),
    _("The %(noun)s could not be saved: it conflicts with existing data."),
    _("%(field)s is required."),
    # Versions: a save over someone else's change (base.py `_stale`, admin/forms.py).
    _(
        "This %(noun)s was changed since you opened it. Nothing was saved; reload it to see the new "
        "version, then make your change again."
    ),
    _(
        "This %(noun)s was changed by %(user)s at %(when)s UTC since you opened it. Nothing was saved; "
        "reload it to see the new version, then make your change again."
    ),
    _(
        "This form does not say which version of the %(noun)s it was opened at, so saving it could "
        "overwrite someone else's change. Nothing was saved; reload the page and make your change again."
    ),
    # The catalog and orders (backend/services/catalog.py, orders.py).
    _("The category %(name)s still has subcategories; move or delete them first."),
    _("The category %(name)s still has %(count)s product; move or delete them first."),
    _("The category %(name)s still has %(count)s products; move or delete them first."),
    _("Only %(count)s of %(sku)s in stock."),
    _("Not enough stock for %(sku)s."),
    _("%(sku)s is archived and cannot be ordered."),
    _("Order #%(id)s is %(status)s; its items can no longer change."),
    # Imports: notes on how a file was read, and files or rows refused (backend/services/exchange).
    _("The workbook has %(count)s sheets; only the first, %(sheet)s, was read."),
    _("The file has no %(label)s column to match rows by."),
    _("No %(noun)s named %(value)s."),
    # Permissions (backend/auth/authority.py, services/history.py).
    _("You do not have permission to do this (%(codename)s)."),
    _("You do not have permission to see the history of %(table)s records."),
    _("You do not have permission to revert %(noun)s records."),
    _("Only a superuser can give the role %(role)s: it can purge records."),
    _("You cannot give the role %(role)s: it holds permissions you lack (%(codenames)s)."),
    _("Only a superuser can grant %(codename)s."),
    _("You cannot grant %(codename)s: you do not hold it yourself."),
    _("%(username)s has no second factor to reset."),
    # Values as backend/values.py and pydantic word them (field errors of every form).
    _("%(name)s must be a whole number from %(minimum)s to %(maximum)s."),
    _("%(name)s must be a date like 2026-01-31."),
    _("String should have at most %(count)s characters"),
    _("String should have at least %(count)s characters"),
    _("String should have at most %(count)s character"),
    _("String should have at least %(count)s character"),
    _("Input should be greater than %(limit)s"),
    _("Input should be greater than or equal to %(limit)s"),
    _("Input should be less than %(limit)s"),
    _("Input should be less than or equal to %(limit)s"),
    _("Decimal input should have no more than %(count)s decimal places"),
    _("Decimal input should have no more than %(count)s digits in total"),
    _("Input should be %(choices)s"),
)
