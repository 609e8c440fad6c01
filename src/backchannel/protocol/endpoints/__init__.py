"""One module per endpoint: each reads top to bottom as ordered small steps."""
