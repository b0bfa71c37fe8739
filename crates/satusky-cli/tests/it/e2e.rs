//! End to end against the real `satusky serve`, added once the server lands.
