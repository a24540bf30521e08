"""facesketch.ui."""
