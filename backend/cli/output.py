"""The CLI's output helpers: the only place that prints."""

from __future__ import annotations

import json
from typing import Any

import click


def say(message: str = "") -> None:
    click.echo(message)


def error(message: str) -> None:
    click.echo(f"Error: {message}", err=True)


def as_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
