//! The settings a process runs with. [`config`](crate::config) reads the layers and checks
//! what it can alone (types, ranges, names); the rules that need a domain's knowledge
//! live with their domain (a log filter in `telemetry`, host patterns and the signing key
//! in `outbound`, cron expressions and each schedule's job in `scheduler`) and are
//! gathered here, above every domain, so that each mode, `app config check` and the tests
//! refuse the same settings with the same message. Load through [`load`].

use crate::config::{self, Check, ConfigError, LoadOptions, Loaded, Settings};

/// Loads the layers and runs every check: `config`'s own, then each domain's.
pub fn load(options: LoadOptions) -> Result<Loaded, ConfigError> {
    config::load(options, rules)
}

/// Every domain's rules.
fn rules(settings: &Settings) -> Check {
    crate::telemetry::check_settings(&settings.log)?;
    crate::outbound::check_settings(&settings.outbound)?;
    crate::scheduler::check_settings(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        load(LoadOptions::for_test(vars))
    }

    fn refusal(vars: &[(&str, &str)]) -> String {
        load_with(vars).err().expect("refused").to_string()
    }

    #[test]
    fn an_invalid_log_filter_names_rust_log() {
        let error = load_with(&[("RUST_LOG", "info,[[[")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("log.filter") && error.contains("RUST_LOG"),
            "{error}"
        );
    }

    #[test]
    fn a_malformed_signing_secret_is_refused_without_printing_it() {
        let error = refusal(&[("OUTBOUND_SIGNING_SECRET", "not-a-whsec-secret")]);
        assert!(
            error.contains("OUTBOUND_SIGNING_SECRET") && error.contains("whsec_"),
            "{error}"
        );
        assert!(!error.contains("not-a-whsec-secret"), "{error}");
    }

    #[test]
    fn an_allow_host_pattern_must_be_a_host_or_a_suffix() {
        let error = refusal(&[("OUTBOUND_ALLOW_HOSTS", "*.railway.internal,http://x")]);
        assert!(error.contains("outbound.allow_hosts"), "{error}");
        let loaded = load_with(&[("OUTBOUND_ALLOW_HOSTS", "*.railway.internal,hooks.local")]);
        assert_eq!(loaded.unwrap().settings.outbound.allow_hosts.len(), 2);
    }
}
