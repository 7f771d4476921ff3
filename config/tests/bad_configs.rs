//! Every malformed configuration under `tests/fixtures/bad/` is refused with an error at
//! the key its first line names (`# key: targets[0].address`), and the shipped
//! configurations validate.

use quickdraw_config::{Config, ConfigError};
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bad");

#[test]
fn each_bad_fixture_is_refused_naming_its_key() {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let key = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# key: "))
            .unwrap_or_else(|| panic!("{}: line 1 must be `# key: PATH`", path.display()))
            .trim();
        let err = match Config::from_toml(&text) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e,
        };
        assert!(
            matches!(err, ConfigError::Invalid(_)),
            "{}: expected a problem at a key, got {err}",
            path.display()
        );
        let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&key),
            "{}: no problem at {key}: {err}",
            path.display()
        );
        assert!(err.to_string().contains(key), "{err}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

#[test]
fn shipped_configurations_validate() {
    for name in ["lab.toml", "example-baremetal.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        if let Err(e) = Config::load(&path) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn syntax_errors_quote_the_line() {
    let err = Config::from_toml("[appliance\nbackend = 1\n").unwrap_err();
    assert!(matches!(err, ConfigError::Parse(_)), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn problems_in_several_sections_come_together() {
    let lab = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.toml"))
        .unwrap()
        .replace("min_lead_ms = 20", "min_lead_ms = 0")
        .replace("max_open_arms = 64", "max_open_arms = 0")
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"192.0.2.1:9464\"")
        .replace("prefix_len = 24", "prefix_len = 0");
    let err = Config::from_toml(&lab).unwrap_err();
    let mut paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "appliance.prefix_len",
            "limits.max_open_arms",
            "metrics.listen",
            "timing.min_lead_ms"
        ]
    );
}
