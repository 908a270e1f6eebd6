"""Readable default labels for model columns: "Placed at", not `placed_at`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from backend.labels import readable_label


def default_labels(names: Iterable[str], declared: Mapping[Any, str]) -> dict[Any, str]:
    """A label for every column in `names`; the labels a view declares win."""
    declared_names = {key if isinstance(key, str) else key.key for key in declared}
    labels: dict[Any, str] = {name: readable_label(name) for name in names if name not in declared_names}
    labels.update(declared)
    return labels
