//! placeholder, rewritten below
pub mod service;
pub mod stats;
