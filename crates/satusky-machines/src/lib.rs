//! satusky-machines
