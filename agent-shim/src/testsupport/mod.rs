//! Test support (filled in next).
