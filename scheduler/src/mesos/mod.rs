//! The Mesos v1 scheduler HTTP API, as far as the offer adapter needs it (mesos-offers.md).
//!
//! - [`recordio`]: the event-stream framing;
//! - [`types`] and [`calls`]: `Call`/`Event` and the messages inside them, in Mesos' JSON;
//! - [`offers`]: offers into the scheduler's [`Agent`](crate::model::Agent), resources into a
//!   LAUNCH;
//! - [`states`]: Mesos task states into Titus task states;
//! - [`framework`]: [`MesosFramework`](framework::MesosFramework), the async driver that
//!   subscribes, holds offers, launches, acknowledges, declines, watches heartbeats,
//!   re-subscribes and reconciles;
//! - `testing` (feature `testing`, and in this crate's tests): an in-process stand-in master.

pub mod calls;
pub mod framework;
pub mod offers;
pub mod recordio;
pub mod states;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
