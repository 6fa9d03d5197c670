//! A hostile paging cursor: decoding never panics, and whatever decodes re-encodes to a
//! cursor that decodes to the same position and re-encodes to itself.
#![no_main]

use doorman::domain::sessions::{decode_cursor, encode_cursor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    if let Ok(cursor) = decode_cursor(raw) {
        let encoded = encode_cursor(cursor);
        let again = decode_cursor(&encoded).expect("an encoded cursor decodes");
        assert_eq!(again, cursor);
        assert_eq!(encode_cursor(again), encoded);
    }
});
