//! satusky-reconciler
