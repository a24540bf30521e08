"""facesketch.models."""
