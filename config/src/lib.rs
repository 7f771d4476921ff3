//! quickdraw's typed TOML configuration: the schema, loading, and validation that reports
//! every problem at its TOML key path at once.

pub mod cpus;
mod error;
#[cfg(any(test, fuzzing))]
pub mod fuzz;
mod neighbour;
mod queues;
mod schema;
mod sections;
mod validate;
mod validate_sections;

pub use error::{ConfigError, Problem};
pub use queues::{Queues, Steering};
pub use schema::{
    Appliance, Backend, Config, MacAddr, Neighbour, RequestSpec, Target, TrustAnchors, XdpMode,
};
pub use sections::{Control, Journal, Limits, Metrics, Timing, Warming};
pub use validate_sections::OPEN_ARMS_CEILING;

use std::path::Path;

impl Config {
    /// Parses and validates a configuration from TOML text.
    ///
    /// TOML syntax errors are reported with their line. A type error (a string where a
    /// number belongs, an unknown or missing key) stops parsing and is reported at its
    /// key path; semantic checks then run over the whole file and report every problem
    /// found, each at its key path.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| ConfigError::typed(e, text))?;
        let problems = validate::check(&config);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Reads, parses and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// The target called `name`, if configured.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = include_str!("../lab.toml");

    #[test]
    fn lab_config_is_valid() {
        let c = Config::from_toml(LAB).expect("config/lab.toml must validate");
        assert_eq!(c.appliance.backend, Backend::AfXdp);
        assert_eq!(c.appliance.ip, std::net::Ipv4Addr::new(198, 18, 0, 10));
        let t = c.target("lab").unwrap();
        assert_eq!(t.server_name, "target.lab");
        assert_eq!(
            t.trust,
            TrustAnchors::CaFile("/run/quickdraw-lab/ca.pem".into())
        );
        assert!(c.target("nope").is_none());
    }

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Err(e) => e.problems().iter().map(|p| p.path.clone()).collect(),
            Ok(_) => panic!("config should be rejected:\n{text}"),
        }
    }

    #[test]
    fn two_names_for_one_address_share_its_connections() {
        let alias = LAB.replace("name = \"lab\"", "name = \"alias\"");
        let start = alias.find("[[targets]]").unwrap();
        let end = alias.find("[timing]").unwrap();
        let twice = format!("{LAB}\n{}", &alias[start..end]);
        let Err(ConfigError::Invalid(problems)) = Config::from_toml(&twice) else {
            panic!("16 connections to one address with max_connections = 8 must be refused");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "targets[0].address");
        assert!(problems[0].message.contains("lab, alias"), "{problems:?}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_its_key() {
        let bad = LAB
            .replace("ip = \"198.18.0.10\"", "ip = \"127.0.0.1\"")
            .replace("prefix_len = 24", "prefix_len = 33")
            .replace("interface = \"qd0\"", "interface = \"a-name-far-too-long\"")
            .replace(
                "server_name = \"target.lab\"",
                "server_name = \"bad name!\"",
            )
            .replace("max_connections = 8", "max_connections = 0")
            .replace("max_fires_per_arm = 8", "max_fires_per_arm = 1000")
            .replace("core = 1", "core = 4096");
        let got = problems(&bad);
        for key in [
            "appliance.interface",
            "appliance.ip",
            "appliance.prefix_len",
            "appliance.core",
            "targets[0].server_name",
            "targets[0].max_connections",
            "targets[0].connections",
            "targets[0].max_fires_per_arm",
        ] {
            assert!(got.iter().any(|p| p == key), "{key} missing from {got:?}");
        }
        assert_eq!(got.len(), 8, "{got:?}");
    }

    #[test]
    fn duplicate_target_names_and_missing_targets() {
        let (targets_at, control_at) = (
            LAB.find("[[targets]]").unwrap(),
            LAB.find("[timing]").unwrap(),
        );
        let (appliance, target) = (&LAB[..targets_at], &LAB[targets_at..control_at]);
        let two = format!("{appliance}{target}{target}");
        // Twice the lab target is also twice its connections to one address.
        assert_eq!(
            problems(&two),
            vec!["targets[1].name", "targets[0].address"]
        );
        assert_eq!(problems(appliance), vec!["targets"]);
    }

    #[test]
    fn type_errors_name_the_key() {
        let err = Config::from_toml(&LAB.replace("queue = 0", "queue = \"zero\"")).unwrap_err();
        assert!(err.to_string().contains("queue"), "{err}");
        let err = Config::from_toml(&LAB.replace("core = 1", "core = 1\ncroe = 2")).unwrap_err();
        assert!(err.to_string().contains("croe"), "{err}");
        let err = Config::from_toml(&LAB.replace("\"af_xdp\"", "\"dpdk\"")).unwrap_err();
        assert!(err.to_string().contains("backend"), "{err}");
    }
}
