"""Child rows edited inside their parent's create and edit forms: `inlines = [InlineRows(...)]`.

Django's `InlineModelAdmin`, for a `ServiceModelView`: the parent's form shows its live child rows
(an order's lines) and blank rows to add one, and sends them as `<relation>-<row>-<field>` fields
(`items-3-quantity`, `items-3-id`, `items-3-remove`). The parent's service takes them in the same
save, as its input field named after the relationship: a list of lines, each with `id` (an
existing one; on edit), the fields (a many-to-one as its key, `product` -> `product_id`) and
`remove`, and names a problem `<relation>.<position>.<field>`, which is placed back next to its
row and field. Nothing here writes: the service keeps the rules, the permissions and the version.

A relationship field is an ajax lookup: the child model's own view declares it in
`form_ajax_refs`, and its lookup route serves it, with that view's permission and masking rules.
What a row shows and offers follows the actor's `<child>.add`, `.change` and `.delete` (without
them the rows are read-only); `frozen_when(parent)` shows them read-only for every actor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqladmin import ModelView
from sqlalchemy import BigInteger, Integer, SmallInteger
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import RelationshipProperty, selectinload
from sqlalchemy.orm.strategy_options import _AbstractLoad
from starlette.datastructures import FormData
from starlette.requests import Request

from admin import refusals
from admin.auth import current_actor
from admin.controls import admin_of
from admin.relations import masked_ajax_loaders, relation_label
from backend.errors import ValidationFailed
from backend.labels import readable_label
from backend.schemas.orders import MAX_LINES
from backend.values import ID_MAX, InvalidValue, parse_id, parse_int

# Row numbers a form may use: a page adds one row per click, and MAX_LINES bounds what is sent.
MAX_ROW_NUMBER = 9999
# Stands for the row number in the row the "Add a line" button copies (admin/static/inlines.js).
PROTOTYPE_ROW = "__row__"
_KEY = re.compile(r"([a-z_][a-z0-9_]*)-([0-9]{1,4})-([a-z_][a-z0-9_]*)")
_INT_RANGES = {
    SmallInteger: (-(2**15), 2**15 - 1),
    BigInteger: (-ID_MAX - 1, ID_MAX),
    Integer: (-(2**31), 2**31 - 1),
}
UNREADABLE = "The lines sent cannot be read. Nothing was saved; reload the page and make your change again."


@dataclass(frozen=True)
class InlineRows:
    """Rows of `model` edited in the parent's forms through the parent's relationship `relation`.

    `fields` are edited on new rows; `changeable` (a subset) on existing ones; `shown` are read
    from existing rows (columns or properties) and never sent.
    """

    model: type[Any]
    relation: str
    fields: tuple[str, ...]
    changeable: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()
    extra: int = 1
    frozen_when: Callable[[Any], bool] | None = None
    title: str = ""

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)

    def relationships(self) -> dict[str, RelationshipProperty[Any]]:
        """The fields that are many-to-one relationships, by name."""
        mapper: Any = sa_inspect(self.model)
        return {name: mapper.relationships[name] for name in self.fields if name in mapper.relationships}

    def input_name(self, name: str) -> str:
        """The service input's name for field `name`: a relationship's key column (`product_id`)."""
        relation = self.relationships().get(name)
        return str(relation.local_remote_pairs[0][0].key) if relation is not None else name

    def load_option(self, parent: type[Any]) -> _AbstractLoad:
        """Loads the parent's rows with their related records, so the form renders without a query."""
        rows = selectinload(getattr(parent, self.relation))
        for name in self.relationships():
            rows = rows.selectinload(getattr(self.model, name))
        return rows


def submitted_rows(form: FormData, inline: InlineRows) -> dict[int, dict[str, str]]:
    """The rows of `inline` in a submitted form: row number -> field -> text, by row number.

    `ValidationFailed` for a field name that is not `<relation>-<row>-<field>`, a field sent twice
    or too many rows.
    """
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.multi_items():
        if not key.startswith(f"{inline.relation}-"):
            continue
        match = _KEY.fullmatch(key)
        if match is None or match[1] != inline.relation or not isinstance(value, str):
            raise ValidationFailed({inline.relation: [UNREADABLE]}, UNREADABLE)
        try:
            number = parse_int(match[2], minimum=0, maximum=MAX_ROW_NUMBER, name="A row number")
        except InvalidValue as exc:
            raise ValidationFailed({inline.relation: [UNREADABLE]}, UNREADABLE) from exc
        row = rows.setdefault(number, {})
        if match[3] in row:  # one field sent twice: which value was meant is unknown
            raise ValidationFailed({inline.relation: [UNREADABLE]}, UNREADABLE)
        row[match[3]] = value
    if len(rows) > MAX_LINES:
        message = f"A form can send at most {MAX_LINES} lines at once."
        raise ValidationFailed({inline.relation: [message]}, message)
    return dict(sorted(rows.items()))


def is_blank(raw: Mapping[str, str], inline: InlineRows) -> bool:
    """A new row left empty, or removed before it was saved: not a line."""
    return not raw.get("id") and (bool(raw.get("remove")) or not any(raw.get(name) for name in inline.fields))


def line_numbers(inline: InlineRows, rows: Mapping[int, Mapping[str, str]]) -> list[int]:
    """The row number of each line the service is sent, by its position there: blank rows are none."""
    return [number for number, raw in rows.items() if not is_blank(raw, inline)]


def service_lines(inline: InlineRows, rows: Mapping[int, Mapping[str, str]]) -> list[dict[str, Any]]:
    """The service's lines from submitted rows, in the order of `line_numbers`.

    Values go through the one parser (backend/values.py); one that does not parse is a
    `ValidationFailed` keyed `<relation>.<position>.<input field>`, as the service names its own.
    """
    relationships = inline.relationships()
    lines: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for number in line_numbers(inline, rows):
        raw = rows[number]
        line: dict[str, Any] = {}
        for name, text in raw.items():
            target = "id" if name == "id" else inline.input_name(name)
            try:
                value = _parsed(inline, name, text, is_relation=name in relationships)
            except InvalidValue as exc:
                errors[f"{inline.relation}.{len(lines)}.{target}"] = [exc.message]
                continue
            if value is not None:
                line[target] = value
        lines.append(line)
    if errors:
        raise ValidationFailed(errors)
    return lines


def _parsed(inline: InlineRows, name: str, text: str, *, is_relation: bool) -> Any:
    """A submitted field's value as the service takes it; None for an empty one (left out)."""
    if name == "remove":
        return True if text else None
    if not text:
        return None
    if name == "id" or is_relation:
        return parse_id(text, name="The choice")
    column = getattr(sa_inspect(inline.model).columns, name, None)
    for kind, (low, high) in _INT_RANGES.items():
        if column is not None and isinstance(column.type, kind):
            return parse_int(text, minimum=low, maximum=high, name=readable_label(name))
    return text


@dataclass
class Cell:
    """One field of one row: an input (`kind` "lookup", "number" or "text") or text ("shown")."""

    name: str
    input_name: str
    kind: str
    value: str = ""
    label: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass
class Row:
    number: int | str
    id: int | None = None
    cells: list[Cell] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    removable: bool = False
    removed: bool = False
    gone: bool = False  # an existing line sent back that no longer exists
    errors: list[str] = field(default_factory=list)


@dataclass
class InlineForm:
    """What the create or edit page shows of one inline: its rows and what the actor may do."""

    inline: InlineRows
    title: str
    headers: list[str]
    rows: list[Row]
    prototype: Row
    lookup_url: str
    can_add: bool
    can_remove: bool
    next_row: int
    numbers: list[int]  # the row number of each line the service was sent

    @property
    def name(self) -> str:
        return self.inline.relation

    @property
    def editable(self) -> bool:
        return (
            self.can_add
            or self.can_remove
            or any(cell.kind != "shown" for row in self.rows for cell in row.cells)
        )

    def claim(self, request: Request) -> None:
        """Move the recorded refusal's problems of these rows next to their rows and fields.

        Called by the template before the form's own fields take theirs (`prepare_form`), so
        a problem of a row is shown once, by its row; the sentence above the form stays.
        """
        refusal = refusals.recorded(request)
        exc = refusal.error if refusal is not None else None
        if refusal is None or not isinstance(exc, ValidationFailed):
            return
        by_number = {row.number: row for row in self.rows}
        names = {self.inline.input_name(name): name for name in self.inline.fields}
        pattern = re.compile(rf"{re.escape(self.name)}\.([0-9]+)\.(\w+)")
        rest: dict[str, list[str]] = {}
        for key, messages in exc.errors.items():
            match = pattern.fullmatch(key)
            if key == self.name:
                continue  # the lines' problems as one field's: each is shown by its row instead
            position = int(match[1]) if match else -1
            if not 0 <= position < len(self.numbers) or self.numbers[position] not in by_number:
                rest[key] = messages
                continue
            row = by_number[self.numbers[position]]
            cell = next((c for c in row.cells if c.name == names.get(match[2] if match else "")), None)
            (cell.errors if cell is not None and cell.kind != "shown" else row.errors).extend(messages)
        refusals.record(request, ValidationFailed(rest, exc.message), form_fields=refusal.form_fields)


async def inline_forms(
    inlines: Sequence[InlineRows], request: Request, parent: Any | None
) -> list[InlineForm]:
    """The inline forms of a create page (`parent` None) or of the edit page of `parent`.

    Rows come from what was submitted (a refused save shows what the user typed) and from
    `parent`'s loaded rows; nothing is read from the database but the labels of records chosen
    in new rows sent back.
    """
    form = await request.form() if request.method == "POST" else None
    return [await _inline_form(inline, request, parent, _sent(form, inline)) for inline in inlines]


def _sent(form: FormData | None, inline: InlineRows) -> dict[int, dict[str, str]]:
    if form is None:
        return {}
    try:
        return submitted_rows(form, inline)
    except ValidationFailed:
        return {}  # the save refuses the form; the page shows the stored rows


async def _inline_form(
    inline: InlineRows, request: Request, parent: Any | None, sent: Mapping[int, Mapping[str, str]]
) -> InlineForm:
    actor = current_actor(request)
    frozen = parent is not None and inline.frozen_when is not None and inline.frozen_when(parent)
    may = {
        action: not frozen and actor.has_perm(f"{inline.table}.{action}")
        for action in ("add", "change", "delete")
    }
    child = _child_view(request, inline)
    stored = {row.id: row for row in getattr(parent, inline.relation)} if parent is not None else {}
    rows: list[Row] = []
    for number, raw in sent.items():
        if raw.get("id"):
            item = stored.get(_id(raw["id"]))
            rows.append(_existing_row(inline, request, number, item, raw, may))
        else:
            rows.append(await _new_row(inline, request, child, number, raw))
    next_row = max(sent, default=-1) + 1
    sent_ids = {row.id for row in rows}
    for item in stored.values():
        if item.id not in sent_ids and getattr(item, "deleted_at", None) is None:
            rows.append(_existing_row(inline, request, next_row, item, {}, may))
            next_row += 1
    for _ in range(0 if sent or not may["add"] else inline.extra):
        rows.append(await _new_row(inline, request, child, next_row, {}))
        next_row += 1
    return InlineForm(
        inline=inline,
        title=inline.title or readable_label(inline.relation),
        headers=[readable_label(name) for name in (*inline.fields, *inline.shown)],
        rows=rows,
        prototype=await _new_row(inline, request, child, PROTOTYPE_ROW, {}),
        lookup_url=str(request.url_for("admin:ajax_lookup", identity=child.identity)),
        can_add=may["add"],
        can_remove=may["delete"],
        next_row=next_row,
        numbers=line_numbers(inline, sent),
    )


def _existing_row(
    inline: InlineRows,
    request: Request,
    number: int,
    item: Any | None,
    raw: Mapping[str, str],
    may: Mapping[str, bool],
) -> Row:
    """A stored row, with what was typed into it; `item` None: it no longer exists (removed since)."""
    gone = item is None or getattr(item, "deleted_at", None) is not None
    relationships = inline.relationships()
    cells = []
    for name in inline.fields:
        cell = Cell(name, f"{inline.relation}-{number}-{name}", "shown")
        if name in relationships:
            cell.label = relation_label(request, getattr(item, name)) if item is not None else ""
        else:
            cell.value = raw.get(name, "" if item is None else str(getattr(item, name)))
            cell.label = cell.value
            if name in inline.changeable and may["change"] and not gone:
                cell.kind = _input_kind(inline, name)
        cells.append(cell)
    return Row(
        number=number,
        id=_id(raw["id"]) if item is None else item.id,
        cells=cells,
        shown=["" if item is None else str(getattr(item, name)) for name in inline.shown],
        removable=may["delete"] and not gone,
        removed=bool(raw.get("remove")),
        gone=gone,
        errors=["This line no longer exists: it was removed since the page was opened."] if gone else [],
    )


async def _new_row(
    inline: InlineRows, request: Request, child: ModelView, number: int | str, raw: Mapping[str, str]
) -> Row:
    """A row for a new line, with what was typed into it; a chosen record is shown by its label."""
    relationships = inline.relationships()
    cells = []
    for name in inline.fields:
        cell = Cell(name, f"{inline.relation}-{number}-{name}", _input_kind(inline, name), raw.get(name, ""))
        if name in relationships and cell.value:
            chosen = _id(cell.value)
            loader = masked_ajax_loaders(child)[name].for_actor(current_actor(request))
            found = await loader.format_by_pk(chosen) if chosen is not None else {}
            cell.value, cell.label = (str(found["id"]), str(found["text"])) if found else ("", "")
        cells.append(cell)
    return Row(number=number, cells=cells, shown=["" for _ in inline.shown])


def _input_kind(inline: InlineRows, name: str) -> str:
    if name in inline.relationships():
        return "lookup"
    column = getattr(sa_inspect(inline.model).columns, name, None)
    return "number" if column is not None and isinstance(column.type, Integer) else "text"


def _id(text: str) -> int | None:
    try:
        return parse_id(text)
    except InvalidValue:
        return None


def _child_view(request: Request, inline: InlineRows) -> ModelView:
    """The child model's view, whose ajax lookups serve the rows' relationship fields."""
    for view in admin_of(request).views:
        if isinstance(view, ModelView) and view.model is inline.model:
            missing = set(inline.relationships()) - set(masked_ajax_loaders(view))
            if missing:
                raise LookupError(
                    f"{type(view).__name__} declares no ajax lookup for {', '.join(sorted(missing))}."
                )
            return view
    raise LookupError(f"No admin view for {inline.model.__name__}, whose lookups its inline rows use.")
