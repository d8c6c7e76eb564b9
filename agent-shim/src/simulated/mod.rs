//! Simulated runtime (filled in next).
