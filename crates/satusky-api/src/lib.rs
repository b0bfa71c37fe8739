//! satusky-api
