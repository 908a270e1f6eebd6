"""The web admin: SQLAdmin on Starlette, a client of `backend.services`."""
