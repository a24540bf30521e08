"""facesketch.engine."""
