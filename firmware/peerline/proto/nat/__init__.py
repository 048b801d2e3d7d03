"""NAT traversal: STUN (client, reflector), NAT classification, port mapping; hole punching
(``introductions``) and relay channels (``relay_service``), served over the overlay: they
register their message kinds on ``proto.overlay``'s ``Overlay``, which never imports this
package; ``traversal`` is the strategy that uses them."""
