"""Admin views, one module per model."""
