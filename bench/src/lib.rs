//! bench (work in progress).
