"""Notifications: one function, ``notify``, that other apps call after their transaction commits.

For now it delivers to a log channel (the ``notifications`` logger); routing by tier and
environment and real channels come later behind the same signature.
"""
