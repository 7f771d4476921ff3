//! The kernel: a version with everything the datapath uses, and BTF.

use super::{Check, Host};

/// Oldest kernel with all of it: XDP through a BPF link (5.9), shared-UMEM sockets on
/// other queues (5.10), memcg-accounted BPF maps (5.11).
const MIN: (u32, u32) = (5, 11);

/// `major.minor` of a release string (`6.18.44-fc-v857`).
fn major_minor(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub fn version_and_btf(host: &Host) -> Check {
    const NAME: &str = "kernel";
    let Some(release) = host.read("/proc/sys/kernel/osrelease") else {
        return Check::fail(
            NAME,
            "cannot read /proc/sys/kernel/osrelease",
            "run on Linux with /proc mounted",
        );
    };
    let btf = host.exists("/sys/kernel/btf/vmlinux");
    match major_minor(&release) {
        Some(v) if v < MIN => Check::fail(
            NAME,
            format!("{release}: older than {}.{}", MIN.0, MIN.1),
            "upgrade the kernel (Debian 12 ships 6.1)",
        ),
        None => Check::warn(
            NAME,
            format!("{release}: version not understood"),
            "check that the kernel is 5.11 or newer",
        ),
        Some(_) if !btf => Check::warn(
            NAME,
            format!("{release}, no BTF (/sys/kernel/btf/vmlinux missing)"),
            "a kernel built with CONFIG_DEBUG_INFO_BTF=y (tools and verifier messages need it)",
        ),
        Some(_) => Check::pass(NAME, format!("{release} with BTF")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::canned::Tree;
    use super::super::Status;
    use super::*;

    #[test]
    fn pass_warn_fail() {
        let t = Tree::new();
        t.file("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
            .file("/sys/kernel/btf/vmlinux", "");
        assert_eq!(version_and_btf(&t.host()).status, Status::Pass);
        let t = Tree::new();
        t.file("/proc/sys/kernel/osrelease", "6.1.0\n");
        assert_eq!(version_and_btf(&t.host()).status, Status::Warn, "no BTF");
        let t = Tree::new();
        t.file("/proc/sys/kernel/osrelease", "5.4.0-150-generic\n")
            .file("/sys/kernel/btf/vmlinux", "");
        assert_eq!(version_and_btf(&t.host()).status, Status::Fail);
        assert_eq!(major_minor("6.18.44-fc-v857"), Some((6, 18)));
    }
}
