//! The built-in ProjectX gateway simulator.
pub mod events;
pub mod market;
pub mod orders;
