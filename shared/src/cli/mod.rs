//! The `plexe` command: `serve` (the local all-in-one server) and `admin` (operator tasks).
