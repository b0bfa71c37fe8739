//! Integration tests for `satusky-proto`.

mod regenerate;
mod wire;
