//! The loss programs installed on a live veth end in a network namespace this test makes
//! (`ql<pid>`, veth `ql<pid>a`/`ql<pid>b`): they stay after the `Loss` is dropped, are
//! read back from the kernel, sit after the stamper on the egress hook, and are removed.
//! A guard deletes the namespace however the test ends.

use std::process::Command;

use crate::{Loss, Stamper};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip(8)");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn installed_loss_outlives_its_loader_and_is_removed() {
    let id = std::process::id();
    let ns = Namespace(format!("ql{id}"));
    let (a, b) = (format!("ql{id}a"), format!("ql{id}b"));
    ip(&["netns", "add", &ns.0]);
    ip(&[
        "-n", &ns.0, "link", "add", &a, "type", "veth", "peer", "name", &b,
    ]);
    ip(&["-n", &ns.0, "link", "set", &a, "up"]);
    ip(&["-n", &ns.0, "link", "set", &b, "up"]);
    let netns = Some(ns.0.as_str());

    assert_eq!(Loss::installed(netns, &b).unwrap(), None);
    // The stamper first, as in a bench run: its filter must stay first.
    let mut stamper = Stamper::load().unwrap();
    stamper.attach_in_netns(&ns.0, &b).unwrap();
    Loss::load(5).unwrap().install(netns, &b).unwrap();
    // The loader is gone; the programs are not.
    assert_eq!(Loss::installed(netns, &b).unwrap(), Some(5));
    let link = ip(&["-n", &ns.0, "link", "show", &b]);
    assert!(link.contains("xdp"), "{link}");
    let filters = ip_tc(&ns.0, &["filter", "show", "dev", &b, "egress"]);
    let stamp_at = filters.find("stamp_egress").expect("stamper filter");
    let loss_at = filters.find("loss_egress").expect("loss filter");
    assert!(stamp_at < loss_at, "the stamper runs first: {filters}");

    // Setting it again replaces it.
    Loss::load(100).unwrap().install(netns, &b).unwrap();
    assert_eq!(Loss::installed(netns, &b).unwrap(), Some(100));

    assert!(Loss::remove(netns, &b).unwrap());
    assert_eq!(Loss::installed(netns, &b).unwrap(), None);
    let filters = ip_tc(&ns.0, &["filter", "show", "dev", &b, "egress"]);
    assert!(!filters.contains("loss_egress"), "{filters}");
    assert!(
        filters.contains("stamp_egress"),
        "the stamper's stays: {filters}"
    );
    assert!(!Loss::remove(netns, &b).unwrap(), "nothing left to remove");
    stamper.detach().unwrap();
}

fn ip_tc(netns: &str, args: &[&str]) -> String {
    let out = Command::new("tc")
        .args(["-n", netns])
        .args(args)
        .output()
        .expect("run tc(8)");
    assert!(out.status.success(), "tc {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}
