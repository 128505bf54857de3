"""Approvals: policies, execution requests and their state machine, votes, break-glass grants.

Other apps use ``approvals.services`` (writes) and ``approvals.selectors`` (reads) only.
"""
