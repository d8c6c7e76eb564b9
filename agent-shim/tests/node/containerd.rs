//! containerd scenarios (filled below).
