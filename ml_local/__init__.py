"""A local model server speaking Label Studio's ML backend protocol — a TEST DOUBLE (see server)."""

from .server import LocalModel

__all__ = ["LocalModel"]
