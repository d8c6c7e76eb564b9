//! Titus agent-side environment (filled in next).
