//! Deterministic Titus task ids.
//!
//! A task id is a UUID (Titus clients reject anything else), and it must be the same every time
//! the job controller computes it for the same attempt, so a pass retried after a crash creates
//! the same `TitusTask` (the second create answers AlreadyExists) instead of a duplicate.
//!
//! # Scheme
//!
//! `task_id = UUIDv5(namespace = job uid, name = key)`, where the job uid is the `TitusJob`'s
//! `metadata.uid` (itself a UUID; a uid that is not one is first hashed into
//! [`TITUS_TASK_ID_NAMESPACE`]) and the key is:
//!
//! | attempt | key |
//! |---|---|
//! | batch, any attempt of index `i` | `index/<i>/<resubmitNumber>` |
//! | service, first attempt of a new slot | `slot/<n>`, `n` = the job's `status.nextServiceTaskSequence` |
//! | service, replacement of a finished attempt | `<originalId>/<resubmitNumber>` |
//!
//! Batch has one attempt chain per index, so index and resubmit number name the attempt. A
//! service slot number is handed out once (the job controller bumps `nextServiceTaskSequence` in
//! the status write that records the creation); a replacement is named by its chain and position.

use uuid::Uuid;

/// Namespace used to turn a job uid that is not a UUID into one (random, fixed forever).
pub const TITUS_TASK_ID_NAMESPACE: Uuid =
    Uuid::from_u128(0x7a1e_5d3c_2f4b_4c8e_9d61_0b3a_5e7f_c214);

/// What identifies one task attempt within its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskIdKey<'a> {
    /// A batch attempt: index and resubmit number.
    Batch {
        /// Task index.
        index: u32,
        /// 0 for the first attempt of the index.
        resubmit_number: u32,
    },
    /// The first attempt of a new service slot.
    ServiceSlot {
        /// The job's `nextServiceTaskSequence` at creation.
        sequence: u64,
    },
    /// A replacement of a finished service attempt.
    Replacement {
        /// The chain's first attempt id.
        original_id: &'a str,
        /// The replacement's resubmit number (≥ 1).
        resubmit_number: u32,
    },
}

impl TaskIdKey<'_> {
    /// The key string hashed into the id.
    pub fn key(&self) -> String {
        match self {
            TaskIdKey::Batch {
                index,
                resubmit_number,
            } => format!("index/{index}/{resubmit_number}"),
            TaskIdKey::ServiceSlot { sequence } => format!("slot/{sequence}"),
            TaskIdKey::Replacement {
                original_id,
                resubmit_number,
            } => format!("{original_id}/{resubmit_number}"),
        }
    }
}

/// The deterministic task id (lower-case hyphenated UUID) of an attempt of job `job_uid`.
pub fn task_id(job_uid: &str, key: &TaskIdKey<'_>) -> String {
    let namespace = Uuid::parse_str(job_uid)
        .unwrap_or_else(|_| Uuid::new_v5(&TITUS_TASK_ID_NAMESPACE, job_uid.as_bytes()));
    Uuid::new_v5(&namespace, key.key().as_bytes())
        .hyphenated()
        .to_string()
}

/// Whether `id` is a UUID string, as Titus requires of job and task ids.
pub fn is_uuid(id: &str) -> bool {
    Uuid::parse_str(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn the_same_attempt_always_gets_the_same_id() {
        let key = TaskIdKey::Batch {
            index: 2,
            resubmit_number: 1,
        };
        assert_eq!(task_id(JOB, &key), task_id(JOB, &key));
        assert!(is_uuid(&task_id(JOB, &key)));
    }

    #[test]
    fn different_attempts_and_jobs_get_different_ids() {
        let first = task_id(
            JOB,
            &TaskIdKey::Batch {
                index: 0,
                resubmit_number: 0,
            },
        );
        let retry = task_id(
            JOB,
            &TaskIdKey::Batch {
                index: 0,
                resubmit_number: 1,
            },
        );
        let slot = task_id(JOB, &TaskIdKey::ServiceSlot { sequence: 0 });
        let other_job = task_id(
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            &TaskIdKey::Batch {
                index: 0,
                resubmit_number: 0,
            },
        );
        let all = [&first, &retry, &slot, &other_job];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn keys_follow_the_documented_scheme() {
        assert_eq!(
            TaskIdKey::Replacement {
                original_id: "abc",
                resubmit_number: 3
            }
            .key(),
            "abc/3"
        );
        assert_eq!(TaskIdKey::ServiceSlot { sequence: 7 }.key(), "slot/7");
        assert!(is_uuid(&task_id(
            "not-a-uuid",
            &TaskIdKey::ServiceSlot { sequence: 7 }
        )));
    }
}
