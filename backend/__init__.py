"""Custodian's application core: settings, database, models, services and CLI."""
