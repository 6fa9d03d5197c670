//! A hostile `doorman.toml`: extraction and validation answer Ok or an error naming the
//! problem, never a panic.
#![no_main]

use figment::Figment;
use figment::providers::{Format, Toml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match doorman::Config::from_figment(Figment::new().merge(Toml::string(text))) {
        Ok(config) => assert!(config.validate().is_ok()),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
