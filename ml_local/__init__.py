"""A local model server speaking Label Studio's ML backend protocol — a TEST DOUBLE
(``ml_local.server``; run it with ``python -m ml_local.server``)."""
