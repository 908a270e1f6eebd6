"""Readable default labels for model columns: "Placed at", not `placed_at`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Words people read in capitals.
ACRONYMS = {"id": "ID", "sku": "SKU", "url": "URL", "ip": "IP", "pii": "PII", "csv": "CSV"}


def readable_label(name: str) -> str:
    """`placed_at` -> "Placed at", `is_active` -> "Active", `category_id` -> "Category ID"."""
    words = [word for word in name.split("_") if word]
    if len(words) > 1 and words[0] == "is":
        words = words[1:]
    text = " ".join(ACRONYMS.get(word, word) for word in words) or name
    return text[:1].upper() + text[1:]


def default_labels(names: Iterable[str], declared: Mapping[Any, str]) -> dict[Any, str]:
    """A label for every column in `names`; the labels a view declares win."""
    declared_names = {key if isinstance(key, str) else key.key for key in declared}
    labels: dict[Any, str] = {name: readable_label(name) for name in names if name not in declared_names}
    labels.update(declared)
    return labels
