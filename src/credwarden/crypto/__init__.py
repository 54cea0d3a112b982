"""The barrier: envelope encryption of secret fields and the sources of the master key."""
