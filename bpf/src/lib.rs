//! The XDP steering program (work in progress).
