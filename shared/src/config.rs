//! Configuration from the environment (as SAM passes it) and the choice of backend.
