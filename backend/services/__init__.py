"""Services: the one place where rules, permissions and audit are applied."""
