"""Authentication and authorization: passwords, permissions, actors, sessions."""
