//! A JSON response payload that serialises straight to bytes.
//!
//! poem-openapi's `Json<T>` first converts the value to a `serde_json::Value` tree (a
//! `BTreeMap` and a `String` key per field) and then serialises that tree; for a list of
//! fifty sessions that is most of the request's CPU time, spent in malloc and free.
//! [`JsonOut`] documents the same schema (the type's poem-openapi description) but
//! serialises the value with serde in one pass into one buffer sized up front. The
//! tests in `api/model.rs` check that serde and poem-openapi give the same JSON.

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

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Serialises a time as RFC 3339 in UTC ("2026-11-23T09:30:00Z"), as poem-openapi
/// renders it, without going through `time`'s general formatter (three per session, and
/// the formatter was a tenth of a session listing's CPU time).
pub fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) || t.nanosecond() != 0 {
        return time::serde::rfc3339::serialize(&t, s);
    }
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, u8::from(t.month()) as u32);
    put(8, 2, t.day() as u32);
    put(11, 2, t.hour() as u32);
    put(14, 2, t.minute() as u32);
    put(17, 2, t.second() as u32);
    // Only ASCII digits and separators were written.
    s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
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
