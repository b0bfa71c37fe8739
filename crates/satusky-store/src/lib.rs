//! satusky-store
