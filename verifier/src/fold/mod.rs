//! State derived from the log by deterministic folds over its entries,
//! pure so that the log (when it admits an entry) and an offline auditor
//! (replaying entries it holds proofs for) decide alike.
//!
//! * [`registry`]: each agent's passport, key in force, sequence number
//!   and retirement.
//! * [`sources`]: each signal source's key, the signal types it may file
//!   and its sequence number; the subjects of signed signals.
//! * [`trust`]: each agent's trust score (Beta reputation with half-life
//!   forgetting, times attestation freshness), its risk level and the
//!   exact instants at which decay alone crosses a threshold
//!   (docs/TRUST.md).
//! * [`trust_log`]: which entry is which evidence about which agent, under
//!   the policy in force at its index: the trust view the log keeps and an
//!   auditor recomputes.
//! * [`drift`]: each agent's behaviour drift, a histogram of its actions
//!   compared with its own baseline by the Population Stability Index.
//! * [`grant`]: the one rule an action token is granted by, from an
//!   agent's trust state under the policy's risk classes.
//! * [`policy`]: the parameters of both, read strictly and hashed
//!   canonically.
//! * [`fixed`]: the Q32.32 arithmetic and pinned tables they share; no
//!   floating point anywhere in these folds.

pub mod drift;
pub mod fixed;
pub mod grant;
pub mod policy;
pub mod registry;
pub mod sources;
pub mod trust;
pub mod trust_log;
