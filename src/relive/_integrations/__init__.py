"""Integrations with servers and tools; they import the core, never the reverse."""
