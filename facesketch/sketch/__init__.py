"""facesketch.sketch."""
