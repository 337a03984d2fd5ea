//! The registry data plane: references, digests, and (later) the ACR token exchange and copies.

pub mod reference;
