//! satusky-client
