"""The probe pod: its spec, launching it through the cluster door, following it, removing it.
"""
