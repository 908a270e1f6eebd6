"""Pydantic input schemas: what the services accept, with limits matching the columns."""
