"""Builds Peerline's SD-card image: a Debian 13 arm64 system that boots into the phone.

Host-side tooling, run as root on a Debian machine; it never runs on the phone. The stages are
in ``build.py``; what they write is laid out by ``layout.py`` and pinned by ``locks.py``.
"""
