//! A hostile `User-Agent` header: cleaning, woothee parsing and the label never panic,
//! and what is kept is bounded and free of control characters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cleaned = doorman::ua::clean_user_agent(Some(data));
    assert!(cleaned.len() <= doorman::ua::MAX_USER_AGENT);
    assert!(!cleaned.chars().any(char::is_control));
    let device = doorman::ua::parse(&cleaned);
    assert!(!device.label().is_empty());
});
