"""The data directory: the TOML config, the SQLite database and the key file (the only code
that touches them)."""
