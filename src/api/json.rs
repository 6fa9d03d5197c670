//! A JSON response payload that serialises straight to bytes.
//!
//! poem-openapi's `Json<T>` first converts the value to a `serde_json::Value` tree (a
//! `BTreeMap` and a `String` key per field) and then serialises that tree; for a list of
//! fifty sessions that is most of the request's CPU time, spent in malloc and free.
//! [`JsonOut`] documents the same schema (the type's poem-openapi description) but
//! serialises the value with serde in one pass into one buffer sized up front. The
//! tests in `api/model.rs` check that serde and poem-openapi give the same JSON.

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem::http::header::CONTENT_TYPE;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;
use time::OffsetDateTime;

pub struct JsonOut<T>(pub T);

const CONTENT: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for JsonOut<T> {
    const CONTENT_TYPE: &'static str = CONTENT;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A value [`JsonOut`] can answer with: how many bytes its JSON takes, about, so that
/// the buffer is reserved once instead of grown (and copied) while writing.
pub trait SizeHint {
    fn size_hint(&self) -> usize {
        1024
    }
}

impl<T: Serialize + SizeHint + Send> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(self.0.size_hint());
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => Response::builder().header(CONTENT_TYPE, CONTENT).body(buf),
            Err(err) => {
                tracing::error!(%err, "could not serialise a response");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

impl<T: Type + Serialize + SizeHint + Send> ApiResponse for JsonOut<T> {
    fn meta() -> MetaResponses {
        ok_meta::<T>()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A 200 with a JSON body of `T`'s schema.
fn ok_meta<T: Type>() -> MetaResponses {
    MetaResponses {
        responses: vec![MetaResponse {
            description: "",
            status: Some(200),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: CONTENT,
                schema: T::schema_ref(),
            }],
            headers: vec![],
        }],
    }
}

/// JSON already written (a listing, straight from its rows with the `put_*` writers
/// below), answered and documented as `T`. The tests beside each writer check that it
/// writes what serde writes for `T`.
pub struct Written<T>(Vec<u8>, PhantomData<fn() -> T>);

impl<T> Written<T> {
    pub fn new(json: Vec<u8>) -> Self {
        Written(json, PhantomData)
    }
}

impl<T: Type> Payload for Written<T> {
    const CONTENT_TYPE: &'static str = CONTENT;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T> IntoResponse for Written<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .header(CONTENT_TYPE, CONTENT)
            .body(self.0)
    }
}

impl<T: Type> ApiResponse for Written<T> {
    fn meta() -> MetaResponses {
        ok_meta::<T>()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Writes `s` as a JSON string. Most strings need no escaping and are copied whole;
/// the others are left to serde's escaping.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        put(out, s);
    }
}

/// Whether any byte of `s` is one JSON escapes (a control character, `"` or `\\`): eight
/// bytes at a time, each test true for a word exactly when one of its bytes matches
/// (a borrow can only start at a byte that does).
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let any_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        if x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0
            || any_zero(x ^ (ONES * u64::from(b'"')))
            || any_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// [`put_str`], or `null`.
pub fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes `v` with serde.
pub fn put<V: Serialize + ?Sized>(out: &mut Vec<u8>, v: &V) {
    // Writing to a vector fails only for values JSON cannot hold, which are never given.
    if let Err(err) = serde_json::to_writer(&mut *out, v) {
        tracing::error!(%err, "could not write a value as JSON");
        out.extend_from_slice(b"null");
    }
}

/// Writes the Unix time `secs` as [`rfc3339`] does: straight from the seconds for the
/// years 1970 to 9999 (a listing writes three times per session), through `time` for
/// the others.
pub fn put_time(out: &mut Vec<u8>, secs: i64) {
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(0..=LAST).contains(&secs) {
        return put(out, &Rfc3339(crate::clock::at(secs)));
    }
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut b = *b"\"0000-00-00T00:00:00Z\"";
    let pair = |b: &mut [u8], at: usize, v: i64| {
        b[at] = b'0' + (v / 10) as u8;
        b[at + 1] = b'0' + (v % 10) as u8;
    };
    pair(&mut b, 1, year / 100);
    pair(&mut b, 3, year % 100);
    pair(&mut b, 6, month);
    pair(&mut b, 9, day);
    pair(&mut b, 12, day_secs / 3600);
    pair(&mut b, 15, day_secs / 60 % 60);
    pair(&mut b, 18, day_secs % 60);
    out.extend_from_slice(&b);
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01, for days from
/// then on (H. Hinnant's `civil_from_days`: whole 400-year eras, then the year of the
/// era counted from March, so that the leap day falls last).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (era * 400 + yoe + i64::from(month <= 2), month, day)
}

#[derive(Serialize)]
struct Rfc3339(#[serde(serialize_with = "rfc3339")] OffsetDateTime);

/// Serialises a time as RFC 3339 in UTC ("2026-11-23T09:30:00Z"), as poem-openapi
/// renders it, without going through `time`'s general formatter (three per session, and
/// the formatter was a tenth of a session listing's CPU time).
pub fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    match digits(t) {
        // Only ASCII digits and separators were written.
        Some(b) => s.serialize_str(std::str::from_utf8(&b).unwrap_or_default()),
        None => time::serde::rfc3339::serialize(&t.to_offset(time::UtcOffset::UTC), s),
    }
}

/// "2026-11-23T09:30:00Z" for a time in years 0 to 9999 and whole seconds; `None` for
/// the others, which `time`'s formatter writes.
fn digits(t: &OffsetDateTime) -> Option<[u8; 20]> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, nano) = t.to_hms_nano();
    if !(0..=9999).contains(&year) || nano != 0 {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, u8::from(month) as u32);
    put(8, 2, day as u32);
    put(11, 2, hour as u32);
    put(14, 2, minute as u32);
    put(17, 2, second as u32);
    Some(b)
}

/// [`rfc3339`] for a time that may be null.
pub fn rfc3339_opt<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;
    use time::OffsetDateTime;

    #[derive(serde::Serialize)]
    struct At(#[serde(serialize_with = "super::rfc3339")] OffsetDateTime);

    #[test]
    fn strings_are_written_as_serde_writes_them() {
        let mut samples: Vec<String> = (0u8..=127).map(|b| char::from(b).to_string()).collect();
        for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '·', '😀'] {
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrstuvwxyz".chars().take(at).collect();
                s.push(c);
                s.push_str("0123456789");
                samples.push(s);
            }
        }
        samples.extend(["".into(), "Chrome 120 · macOS 10.15 · Desktop".into()]);
        for s in &samples {
            let mut ours = Vec::new();
            super::put_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn times_are_written_as_serde_writes_them() {
        for secs in [
            0,
            59,
            951_782_400,
            1_700_000_061,
            4_102_444_799,
            253_402_300_799,
        ] {
            let mut ours = Vec::new();
            super::put_time(&mut ours, secs);
            let t = crate::clock::at(secs);
            assert_eq!(ours, serde_json::to_vec(&At(t)).unwrap(), "{secs}");
        }
    }

    #[test]
    fn every_day_to_the_year_2500_is_written_as_time_writes_it() {
        // Each day at another time of day, and the edges of the quick path.
        let days = (0..194_000i64).map(|d| d * 86_400 + d * 7919 % 86_400);
        for secs in days.chain([-1, 86_399, 253_402_300_799, 253_402_300_800]) {
            let mut ours = Vec::new();
            super::put_time(&mut ours, secs);
            let t = crate::clock::at(secs);
            assert_eq!(ours, serde_json::to_vec(&At(t)).unwrap(), "{secs}");
        }
    }

    #[test]
    fn rfc3339_matches_poem_openapi() {
        for secs in [
            0,
            1,
            59,
            951_782_400,
            1_700_000_061,
            1_795_000_000,
            4_102_444_799,
        ] {
            let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
                panic!("bad test time {secs}");
            };
            let ours = serde_json::to_value(At(t)).unwrap();
            assert_eq!(Some(ours), t.to_json(), "{secs}");
        }
    }
}
