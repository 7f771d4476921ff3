//! [`Verdict`]: an XDP action, as returned by a test run.

/// What the program decided for one frame (`enum xdp_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `XDP_ABORTED`: the program failed.
    Aborted,
    /// `XDP_DROP`.
    Drop,
    /// `XDP_PASS`: to the kernel stack.
    Pass,
    /// `XDP_TX`: back out of the receiving interface.
    Tx,
    /// `XDP_REDIRECT`: to the AF_XDP socket.
    Redirect,
    /// Any other value (an invalid action).
    Other(u32),
}

impl From<u32> for Verdict {
    fn from(action: u32) -> Self {
        match action {
            0 => Verdict::Aborted,
            1 => Verdict::Drop,
            2 => Verdict::Pass,
            3 => Verdict::Tx,
            4 => Verdict::Redirect,
            other => Verdict::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict;

    #[test]
    fn from_xdp_action() {
        assert_eq!(Verdict::from(0), Verdict::Aborted);
        assert_eq!(Verdict::from(1), Verdict::Drop);
        assert_eq!(Verdict::from(2), Verdict::Pass);
        assert_eq!(Verdict::from(3), Verdict::Tx);
        assert_eq!(Verdict::from(4), Verdict::Redirect);
        assert_eq!(Verdict::from(5), Verdict::Other(5));
    }
}
