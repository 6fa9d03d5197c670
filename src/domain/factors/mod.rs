//! Second factors (SPEC §12): checking a code, a person's own factors, passkeys
//! (registration and the step-up ceremony), "confirm it's you", and the policy that
//! requires a factor. The sign-in's use of them is in `signin/`.

pub mod codes;
pub mod manage;
pub mod passkeys;
pub mod policy;
pub mod step_up;
pub mod webauthn;
