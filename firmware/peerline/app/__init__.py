"""The composition root: the ``peerline`` command and the daemon shell that wires a phone core
to sockets, devices and the store."""
