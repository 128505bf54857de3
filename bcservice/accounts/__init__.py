"""Accounts: who may log in and how (OIDC identities, break-glass flag, API tokens, role mappings).

A Django app inside the bcservice package (label ``accounts``): the design keeps authentication
in bcservice, and these are its tables.
"""
