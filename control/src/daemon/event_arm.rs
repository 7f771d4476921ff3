//! Event arms on the control side: `--on SOURCE:PREDICATE` parsed and checked here, with
//! errors that point at the column, and compiled into the matcher the datapath evaluates.
//! The language itself lives in `quickdraw_datapath::event::predicate`, shared with the
//! datapath.

use super::context::Daemon;
use super::error::DaemonError;
use crate::protocol::TriggerSpec;
use quickdraw_datapath::event::predicate::EventSpec;
use quickdraw_datapath::order::Trigger;
use std::sync::Arc;

impl Daemon {
    /// For `On(text)`: the text as journaled and the datapath trigger; `None` for the
    /// other triggers.
    pub(super) fn event_trigger(
        &self,
        trigger: &TriggerSpec,
    ) -> Result<Option<(String, Trigger)>, DaemonError> {
        let TriggerSpec::On(text) = trigger else {
            return Ok(None);
        };
        event_trigger(&self.sources, text).map(|t| Some((text.clone(), t)))
    }
}

/// Parses `text` against the configured source names.
pub(super) fn event_trigger(sources: &[String], text: &str) -> Result<Trigger, DaemonError> {
    let spec = EventSpec::parse(text).map_err(|source| DaemonError::Predicate {
        text: text.to_owned(),
        source,
    })?;
    let source = sources
        .iter()
        .position(|s| **s == *spec.source)
        .ok_or_else(|| DaemonError::UnknownSource {
            name: spec.source.to_string(),
            known: sources.to_vec(),
        })?;
    Ok(Trigger::Event {
        source,
        matcher: Arc::new(spec.matcher),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Vec<String> {
        vec!["lab-sse".into(), "lab-udp".into()]
    }

    #[test]
    fn a_predicate_on_a_configured_source_compiles() {
        let t = event_trigger(&sources(), r#"lab-udp:sku == "1001" && stock > 0"#).unwrap();
        let Trigger::Event { source, matcher } = t else {
            panic!("{t:?}")
        };
        assert_eq!(source, 1);
        assert!(matcher.matches(br#"{"sku":"1001","stock":2}"#));
    }

    #[test]
    fn errors_point_at_the_column_or_name_the_sources() {
        let e = event_trigger(&sources(), "lab-sse:sku = 1").unwrap_err();
        assert!(matches!(e, DaemonError::Predicate { .. }), "{e:?}");
        assert_eq!(
            super::super::error::refusal(&e),
            "--on: lab-sse:sku = 1\n            ^\ncolumn 13: `=` is not a comparison; write `==`"
        );
        let e = event_trigger(&sources(), "feed:sku == 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--on: no event source \"feed\" (configured: lab-sse, lab-udp)"
        );
        let e = event_trigger(&[], "feed:sku == 1").unwrap_err().to_string();
        assert!(e.contains("none is configured"), "{e}");
    }
}
