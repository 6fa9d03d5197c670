//! What several pages show or do the same way, by what it is: a session's cells
//! ([`session`]), the no-JavaScript confirmation step ([`confirm`]), "Confirm it's you"
//! ([`step_up`]), the pages and cookies around a sign-in ([`sign_in`]), and the pieces of
//! a second factor's set-up ([`factors`]). Who is asking is in `web::extract`; the
//! menu in `web::nav`.

pub mod confirm;
pub mod factors;
pub mod session;
pub mod sign_in;
pub mod step_up;
