"""facesketch.face."""
