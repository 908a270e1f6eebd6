"""Texts the admin shows that no code of the admin spells as a message. `NAMES`: views, menu groups,
column labels, filter titles and choices, bulk-action names, confirmations and outcomes, derived from
the models and views at run time.
`FIXED_MESSAGES`: fixed sentences of the services (English, shared with the CLI, never changed for the
admin's sake) and of the admin's guards, translated where they reach a page (admin/i18n.py `gettext`).
A service sentence with values put in (a name, a number) is a pattern in service_messages.py.

Never imported: `pybabel extract` (babel.cfg) reads this list so the catalogs keep these msgids;
tests/admin/test_i18n.py fails when a shipped view shows a name missing from the German catalog.
"""


def _(message: str) -> str:
    return message


NAMES = (
    _("Product"),
    _("Products"),
    _("Catalog"),
    _("ID"),
    _("SKU"),
    _("Name"),
    _("Price"),
    _("Stock"),
    _("Status"),
    _("Category"),
    _("Description"),
    _("Tags"),
    _("Created at"),
    _("Updated at"),
    _("Version"),
    _("Created"),
    _("Created between"),
    _("Archive"),
    _("Mark draft"),
    _("Mark active"),
    _("Categories"),
    _("Slug"),
    _("Parent"),
    _("Parent ID"),
    _("Deleted at"),
    _("Deleted by ID"),
    _("Tag"),
    _("Order"),
    _("Orders"),
    _("Sales"),
    _("Customer"),
    _("Placed at"),
    _("Total"),
    _("Placed"),
    _("Placed between"),
    _("Order item"),
    _("Order items"),
    _("Quantity"),
    _("Unit price"),
    _("Order ID"),
    _("Product ID"),
    _("Customers"),
    _("Email"),
    _("Phone"),
    _("Address"),
    _("User"),
    _("Users"),
    _("Accounts"),
    _("Username"),
    _("Active"),
    _("Superuser"),
    _("Roles"),
    _("Last login at"),
    _("Locale"),
    _("Role"),
    _("Builtin"),
    _("Permissions"),
    _("Trash"),
    _("Review"),
    _("Audit log"),
    _("History"),
    _("My jobs"),
    _("My account"),
    _("marked active"),
    _("set to draft"),
    _("archived"),
    # Bulk actions (`@action` labels and their confirmations) of every shipped view.
    _("Archive the selected products?"),
    _("Mark the selected products active?"),
    _("Mark the selected products as drafts?"),
    _("Reset two-factor sign-in"),
    _("Reset the second factor of the selected users? Their sessions end; they set it up again."),
    # The choices of status filters (enum values as the views title them).
    _("Draft"),
    _("Archived"),
    _("Pending"),
    _("Paid"),
    _("Shipped"),
    _("Cancelled"),
)

FIXED_MESSAGES = (
    _("Please enter a correct username and password. Both fields may be case-sensitive."),
    _("Something went wrong on our side. The error has been logged."),
    _("The change was not saved because of an internal error."),
    _("The database is unavailable right now. Please try again in a moment."),
    _("You cannot deactivate your own account."),
    _("You cannot delete your own account."),
    _("Some values are not valid."),
    _("The password is not acceptable."),
    _("Your session has no security token; reload the page and try again."),
    _("The security token is missing or does not match; reload the page and try again."),
    _("The request does not say it came from a page of this site."),
    _("Requests from an opaque origin are refused."),
    _("Cross-site requests are refused."),
    # Imports: how a file was read, a file refused, an upload gone (backend/services/exchange, admin).
    _("Read as Windows-1252: the file is not UTF-8."),
    _("The file is empty."),
    _("The file is empty: it has no header row and no data."),
    _("The file has a header row but no data rows."),
    _(
        "This upload is no longer available: it was imported already, it is more than a day old, "
        "or it was not uploaded by you. Upload the file again."
    ),
)
