"""Command handlers: thin adapters from parsed arguments to the library."""
