//! Cross-function integration and end-to-end tests. Each file is its own test binary; they share
//! the moto server support of `local_stack::testing`.
