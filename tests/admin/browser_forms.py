"""A form on a page, submitted as a browser would submit it (HTML's form submission rules).

What a browser sends is not what the HTML "says" at first sight, and the
differences are exactly where edit forms lose data:

- a `<select>` (one value, shown as a drop-down) with no option selected
  sends its first option; a `<select multiple>` with none selected sends nothing;
- checkboxes and radio buttons are sent only when checked (value "on" by default);
- a text `<input>` loses its line breaks; a `type="number"` input that is not
  a valid number is sent empty;
- a `<textarea>` drops one line break right after its start tag, and every
  line break is sent as CR LF;
- disabled controls, buttons and submit buttons other than the one clicked are
  not sent.

SQLAdmin's ajax selects are empty `<select>`s that its script fills from the
`data-json` attribute with options already selected; that step is done here too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_NOT_SENT = frozenset({"submit", "button", "reset", "image", "file"})
_NO_NEWLINES = frozenset({"text", "search", "tel", "password", "url", "email"})


@dataclass
class _Select:
    name: str
    multiple: bool
    options: list[tuple[str, bool, bool]] = field(default_factory=list)  # value, selected, disabled


@dataclass
class _Option:
    value: str | None
    selected: bool
    disabled: bool
    text: str = ""


class _FormParser(HTMLParser):
    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.in_form = False
        self.found = False
        self.fields: list[tuple[str, str]] = []
        self.submitters: list[tuple[str, str]] = []
        self.select: _Select | None = None
        self.option: _Option | None = None
        self.textarea: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value if value is not None else "" for key, value in attrs}
        if tag == "form":
            self.in_form = a.get("action", "").split("?")[0] == self.action and not self.found
            self.found = self.found or self.in_form
            return
        if not self.in_form:
            return
        disabled = "disabled" in a
        if tag == "input":
            self._input(a, disabled=disabled)
        elif tag == "select" and not disabled and a.get("name"):
            self.select = _Select(a["name"], multiple="multiple" in a)
            if a.get("data-role") == "select2-ajax":
                # What SQLAdmin's script appends: each item of data-json as a selected option.
                for item in json.loads(a.get("data-json") or "[]"):
                    self.select.options.append((str(item["id"]), True, False))
        elif tag == "option" and self.select is not None:
            self.option = _Option(a.get("value"), "selected" in a, disabled)
        elif tag == "textarea" and not disabled and a.get("name"):
            self.textarea = (a["name"], [])

    def _input(self, a: dict[str, str], *, disabled: bool) -> None:
        kind = a.get("type", "text").lower()
        name = a.get("name")
        if not name or disabled:
            return
        if kind == "submit":
            self.submitters.append((name, a.get("value", "Submit")))
            return
        if kind in _NOT_SENT:
            return
        if kind in ("checkbox", "radio"):
            if "checked" in a:
                self.fields.append((name, a.get("value", "on")))
            return
        value = a.get("value", "")
        if kind in _NO_NEWLINES:
            value = value.replace("\r", "").replace("\n", "")
        if kind == "number" and not _NUMBER.fullmatch(value):
            value = ""
        self.fields.append((name, value))

    def handle_data(self, data: str) -> None:
        if self.option is not None:
            self.option.text += data
        if self.textarea is not None:
            self.textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "option" and self.select is not None and self.option is not None:
            option = self.option
            value = option.value if option.value is not None else " ".join(option.text.split())
            self.select.options.append((value, option.selected, option.disabled))
            self.option = None
        elif tag == "select" and self.select is not None:
            self.fields.extend((self.select.name, value) for value in _selected(self.select))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            name, parts = self.textarea
            text = "".join(parts).replace("\r\n", "\n").replace("\r", "\n")
            text = text.removeprefix("\n")  # the parser drops one line break after <textarea>
            self.fields.append((name, text.replace("\n", "\r\n")))
            self.textarea = None


def _selected(select: _Select) -> list[str]:
    chosen = [value for value, selected, disabled in select.options if selected and not disabled]
    if select.multiple:
        return chosen
    if chosen:
        return chosen[-1:]  # in a one-value select the last selected option wins
    # Nothing selected: a drop-down shows, and sends, its first option that is not disabled.
    enabled = [value for value, _selected, disabled in select.options if not disabled]
    return enabled[:1]


def submitted_form(page: str, action: str, *, submit: str | None = None) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser sends for the form posting to `action`.

    `submit` is the label of the submit button clicked (the first one if None).
    """
    parser = _FormParser(action)
    parser.feed(page)
    parser.close()
    assert parser.found, f"no form posting to {action} on the page"
    buttons = parser.submitters
    clicked = next((b for b in buttons if submit is None or b[1] == submit), None)
    assert clicked is not None, f"no submit button {submit!r} in the form"
    return [*parser.fields, clicked]


def as_post_data(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The pairs as httpx `data=` (repeated names kept, in order)."""
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return data
