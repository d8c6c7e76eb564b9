//! Titus query semantics, as pure functions over the rendered protos: filtering criteria
//! ([`criteria`], §11.3), field projection ([`projection`], §11.4) and pagination ([`page`],
//! §11.5). The same code serves `FindJobs`, `FindTasks`, the observe streams and REST.

pub mod criteria;
pub mod page;
pub mod projection;

pub use criteria::Criteria;
pub use page::{PageRequest, SortKey, paginate};
pub use projection::Projection;
