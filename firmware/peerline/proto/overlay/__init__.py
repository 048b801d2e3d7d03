"""The overlay: a Kademlia-style DHT of signed records, keyed by dialable number."""
