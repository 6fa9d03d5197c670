//! Each operation's declared error answers. The mapping of a domain error to a status
//! and body lives in [`crate::http::errors`], shared with the pages.

/// Declares an operation's error answers: the listed statuses plus 500 and 503, each
/// with [`ErrorBody`], and the conversion from a domain error. A domain error whose
/// status an operation does not declare is a bug; it answers 500 and is logged.
macro_rules! api_errors {
    ($name:ident { $($variant:ident = $status:literal : $doc:literal),* $(,)? }) => {
        #[derive(poem_openapi::ApiResponse, Debug)]
        pub enum $name {
            $(
                #[doc = $doc]
                #[oai(status = $status)]
                $variant(poem_openapi::payload::Json<$crate::http::errors::ErrorBody>),
            )*
            /// Unexpected server error.
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<$crate::http::errors::ErrorBody>),
            /// The database cannot take writes right now (disk full, read-only, busy).
            #[oai(status = 503)]
            Unavailable(poem_openapi::payload::Json<$crate::http::errors::ErrorBody>),
        }

        impl From<$crate::error::Error> for $name {
            fn from(err: $crate::error::Error) -> Self {
                let (status, body) = $crate::http::errors::describe(&err);
                match status.as_u16() {
                    $($status => $name::$variant(poem_openapi::payload::Json(body)),)*
                    503 => $name::Unavailable(poem_openapi::payload::Json(body)),
                    500 => $name::Internal(poem_openapi::payload::Json(body)),
                    other => {
                        tracing::error!(status = other, ?err, "undeclared error status");
                        $name::Internal(poem_openapi::payload::Json($crate::http::errors::ErrorBody::new(
                            "internal",
                            "Something went wrong on our side; it has been logged.",
                        )))
                    }
                }
            }
        }
    };
}
pub(crate) use api_errors;
