//! satusky-core
