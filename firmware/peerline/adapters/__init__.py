"""Real and fake implementations of the ports in ``peerline.ports``."""
