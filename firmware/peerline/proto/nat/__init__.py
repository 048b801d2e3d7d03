"""NAT traversal: STUN (client, reflector), NAT classification; hole punching rides on the
overlay's introductions (``proto.overlay``)."""
