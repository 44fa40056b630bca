"""A local Stripe-compatible server for tests and the demo — a TEST DOUBLE, not production code.

``fixtures3.json`` is Stripe's published example of every API object (MIT licence in
``LICENSE.fixtures3``), used so that the double's objects have the real API's shape.
"""

from .server import Faults, LocalStripe, decode_form

__all__ = ["Faults", "LocalStripe", "decode_form"]
