//! Test support: starting servers and reaching moto.
