//! State derived from the log by deterministic folds over its entries,
//! pure so that the log (when it admits an entry) and an offline auditor
//! (replaying entries it holds proofs for) decide alike.
//!
//! * [`registry`]: each agent's passport, key in force, sequence number
//!   and retirement.

pub mod registry;
