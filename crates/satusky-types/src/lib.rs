//! satusky-types
