//! Identifiers: UUIDv7 strings, so they sort by creation time on every store
//! and make natural keyset-pagination keys.

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn is_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}
