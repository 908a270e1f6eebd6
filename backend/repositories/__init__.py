"""Repositories: the queries. They flush but never commit."""
