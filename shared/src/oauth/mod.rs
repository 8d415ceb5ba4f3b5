//! Connecting a Threads account: OAuth 2.0 with a single-use, browser-bound state and PKCE S256,
//! the code exchanged for a long-lived token that is sealed before it is stored.

pub mod pkce;
pub mod return_to;
pub mod routes;
pub mod state;
