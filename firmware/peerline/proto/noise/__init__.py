"""Noise IK secure channel: handshake, transport sessions, replay window."""
