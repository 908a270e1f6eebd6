"""Edit forms that show the record as it is, so that saving an untouched form changes nothing.

A browser sends what the form shows: a drop-down with no option selected
sends its first option, and a value the form shows less precisely than it
is stored (a time to the second, text whose line breaks the browser rewrites)
comes back changed. So every field here shows the stored value, and a field
sent back exactly as it was shown is left out of the save.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from markupsafe import Markup
from sqladmin.forms import ModelConverter, converts
from sqladmin.widgets import TextAreaWidget
from sqlalchemy import Enum as EnumType
from sqlalchemy.orm import ColumnProperty
from wtforms import Field, Form
from wtforms.fields.core import UnboundField
from wtforms.meta import DefaultMeta
from wtforms.widgets import Input, TextArea

from backend.errors import Conflict
from backend.values import InvalidValue, parse_int

# The class Tabler draws a field type with, as SQLAdmin's converter gives it (`StyledForm`).
_TABLER_CLASS = {"BooleanField": "form-check-input"}
# The hidden field an edit form carries the record's version in.
VERSION_FIELD = "_version"
# The `version` column is an INTEGER; versions start at 1.
VERSION_MAX = 2**31 - 1
# Input types whose value a browser sends as shown, minus line breaks.
_TEXT_INPUTS = frozenset({"text", "search", "tel", "email", "url", "number", "hidden", "password"})


def enum_choice_value(column_type: EnumType) -> Callable[[Any], Any]:
    """Member or stored text -> the text the column stores, which is what each option carries.

    SQLAdmin's own coercion turns a member into its *name* ("ARCHIVED") while
    the options carry the stored values ("archived") of a `values_callable`
    enum, so the record's value matched no option and none was selected.
    """
    members: list[Enum] = list(column_type.enum_class or [])
    stored: list[str] = (
        list(column_type.values_callable(members))  # type: ignore[arg-type]  # SQLAlchemy passes the enum class
        if column_type.values_callable and members
        else [member.name for member in members]
    )
    lookup = dict(zip(members, stored, strict=True))

    def coerce(value: Any) -> Any:
        if isinstance(value, Enum):
            return lookup.get(value, value.name)
        return None if value is None else str(value)

    return coerce


def _none_or_bool(value: Any) -> bool | None:
    return None if value is None or value == "__None" else str(value) == "True"


class LeadingLineBreakTextArea(TextAreaWidget):
    """SQLAdmin's text area, with the line break that HTML drops after `<textarea>` written out.

    Without it a value that starts with a line break loses it on every save.
    """

    def __call__(self, field: Field, **kwargs: Any) -> Markup:
        rendered = super().__call__(field, **kwargs)
        start_tag, _, rest = rendered.partition(">")  # attribute values are escaped: no ">" inside
        return Markup(f"{start_tag}>\r\n{rest}")  # noqa: S704 - both parts come from escaped Markup


class CustodianFormConverter(ModelConverter):
    """SQLAdmin's model converter with fields that show the record's current value."""

    # SQLAdmin types `converts` loosely (Any), hence the ignores on the decorators.

    @converts("Enum")  # type: ignore[untyped-decorator]
    def conv_enum(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> UnboundField[Any]:
        kwargs["coerce"] = enum_choice_value(prop.columns[0].type)  # type: ignore[arg-type]  # an Enum column
        field: UnboundField[Any] = super().conv_enum(model, prop, kwargs)
        return field

    @converts("Boolean", "dialects.mssql.base.BIT")  # type: ignore[untyped-decorator]
    def conv_boolean(
        self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]
    ) -> UnboundField[Any]:
        if prop.columns[0].nullable:
            # SQLAdmin's coercion makes NULL "False", so a NULL was saved as False.
            kwargs.setdefault("coerce", _none_or_bool)
        field: UnboundField[Any] = super().conv_boolean(model, prop, kwargs)
        return field

    @converts("Text", "LargeBinary", "Binary")  # type: ignore[untyped-decorator]
    def conv_text(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> UnboundField[Any]:
        kwargs.setdefault("widget", LeadingLineBreakTextArea())
        field: UnboundField[Any] = super().conv_text(model, prop, kwargs)
        return field


def as_the_browser_sends(field: Field, text: str) -> str | None:
    """`text` shown in `field`, as a browser sends it back; None for fields not shown as text."""
    widget = field.widget
    if isinstance(widget, TextArea):
        return text.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(widget, Input) and widget.input_type in _TEXT_INPUTS:
        return text.replace("\r", "").replace("\n", "")
    return None


def untouched_fields(form: Form, shown: Form) -> set[str]:
    """The text fields of a submitted `form` that came back exactly as `shown` rendered them.

    `shown` is the form as rendered from the record. A field left as it was
    shown is not the user's change, even when its value differs from the
    stored one: a time shown to the second, text whose line breaks the
    browser rewrote. Leaving such fields out of the save keeps them as stored.
    """
    untouched = set()
    for field in form:
        name = field.name
        if name not in shown or not field.raw_data or not isinstance(field.raw_data[0], str):
            continue
        sent = as_the_browser_sends(field, field.raw_data[0])
        if sent is None:
            continue  # not a text field: selects and checkboxes show their value exactly
        # `_value()` is the text WTForms renders into a text field's HTML.
        shown_text = str(shown[name]._value())  # type: ignore[attr-defined]  # every text field has it
        if sent == as_the_browser_sends(shown[name], shown_text):
            untouched.add(name)
    return untouched


def parse_version(raw: object) -> int | None:
    """The version an edit form was opened at (the hidden `_version` field); None if absent or malformed."""
    if not isinstance(raw, str):
        return None
    try:
        return parse_int(raw, minimum=1, maximum=VERSION_MAX, name="The version")
    except InvalidValue:
        return None


def missing_version(noun: str) -> Conflict:
    """The refusal of an edit that does not say which version of the record it was made on."""
    return Conflict(
        f"This form does not say which version of the {noun} it was opened at, so saving it could "
        "overwrite someone else's change. Nothing was saved; reload the page and make your change again."
    )


class StyledForm(Form):
    """A form of our own pages drawn like SQLAdmin's generated ones (Tabler classes on each field).

    SQLAdmin's converter gives its fields `form-control` (`form-check-input` for checkboxes); a
    form written by hand gets the same at render time, unless a field names its own class.
    """

    class Meta(DefaultMeta):
        def render_field(self, field: Field, render_kw: Any) -> Any:
            named = {**(field.render_kw or {}), **dict(render_kw)}
            if "class" not in named and "class_" not in named:
                render_kw = {**dict(render_kw), "class": _TABLER_CLASS.get(field.type, "form-control")}
            return super().render_field(field, render_kw)
