//! The counters and timings kept in memory for `/metrics` (the endpoint is
//! `http::metrics`). A leaf: it imports only `model`.

pub(crate) mod registry;
