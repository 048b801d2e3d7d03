"""Bytes to messages and back: bounded, exact codecs with no state and no crypto."""
