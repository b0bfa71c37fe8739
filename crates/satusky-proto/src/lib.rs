//! satusky-proto
