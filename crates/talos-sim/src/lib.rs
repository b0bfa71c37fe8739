//! talos-sim
