"""The model: Kubernetes and Istio objects loaded, validated and indexed into a snapshot.

Imports nothing else of diag but `diag.errors`; every later stage reads from here.
"""
