"""facesketch: draw a face, see it rendered photo-real, live."""

__version__ = "0.1.0"
