"""Who may do what: principals, actions and the policy the facade asks before every operation."""

from .policy import ACTIONS, OwnerPolicy, Policy, Principal, local_principal

__all__ = ["ACTIONS", "OwnerPolicy", "Policy", "Principal", "local_principal"]
