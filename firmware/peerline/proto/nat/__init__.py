"""NAT traversal: reflexive addresses from STUN servers (and, to come, hole punching)."""
