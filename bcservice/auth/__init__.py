"""Identity and access: OIDC login, the local-login policy, API tokens, MFA for approvers.

``mfa_ok(request_or_user)`` is the one question the approvals service asks before counting a
vote; see bcservice.auth.mfa.
"""

from bcservice.auth.mfa import mfa_ok

__all__ = ["mfa_ok"]
