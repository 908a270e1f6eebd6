"""Services: the one place where rules, permissions and audit are applied."""

from backend.services import audit

# Every unit of work's flushes are audited once a service module is loaded.
audit.install()
