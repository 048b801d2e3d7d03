"""Identity: Ed25519 keys, the X25519 keys derived from them, dialable numbers and SAS."""
