"""Predictions: what the source's sidecar, and an egress gateway behind it, will do with a call,
computed from the model the way istiod builds their config.
"""
