//! The task controller: one Pod per `TitusTask`, and the Titus task state machine over it.
//!
//! [`machine`] is the pure decision ([`machine::next`]); [`facts`] reduces the observed pod,
//! node, Lease and job to what it needs; [`pod`] builds the pod; [`classify`] refines final
//! reasons from messages; [`controller`] observes and acts.

pub mod classify;
pub mod controller;
pub mod facts;
pub mod machine;
pub mod pod;
