"""The parts of ``peerline.proto.node.Node`` that can be read on their own: its config and
counters, the state it keeps per peer, the table of sessions and their order, and the Noise IK
handshakes that fill that table (protocol.md §4, §5).

Import ``Node``, ``NodeConfig`` and ``NodeCounters`` from ``peerline.proto.node``; the modules
here are its internals, split out so that each has one job. None of them imports the node.
"""
