"""Who may do what: principals, API tokens, grants, and the policy the facade asks first."""

from .policy import ACTIONS, GrantPolicy, Policy, Principal, local_principal

__all__ = ["ACTIONS", "GrantPolicy", "Policy", "Principal", "local_principal"]
