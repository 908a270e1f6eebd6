"""Readable labels for column names: "Placed at", not `placed_at` (admin pages, file headers)."""

from __future__ import annotations

# Words people read in capitals.
ACRONYMS = {"id": "ID", "sku": "SKU", "url": "URL", "ip": "IP", "pii": "PII", "csv": "CSV"}


def readable_label(name: str) -> str:
    """`placed_at` -> "Placed at", `is_active` -> "Active", `category_id` -> "Category ID"."""
    words = [word for word in name.split("_") if word]
    if len(words) > 1 and words[0] == "is":
        words = words[1:]
    text = " ".join(ACRONYMS.get(word, word) for word in words) or name
    return text[:1].upper() + text[1:]
