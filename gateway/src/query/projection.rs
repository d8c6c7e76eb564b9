//! Field projection (§11.4): `fields` / `jobFields` / `taskFields` trim returned entities.
//!
//! Paths are dot-separated proto field names (`status.state`, `jobDescriptor.owner`). `id` is
//! always kept; a nested path keeps only that sub-field; for a `map<string, string>` the rest of
//! the path is a map key (`taskContext.agent.host` keeps the key `agent.host`). Unknown names are
//! ignored. An empty list means whole entities. The work is done on the message's reflection
//! (`prost-reflect`), so it follows the protos without a hand-written field list.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, Value};

use crate::pb;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// Keep the whole field.
    All,
    /// Keep only these sub-fields of a message (or of each message in a list).
    Fields(BTreeMap<String, Node>),
    /// Keep only these keys of a string-keyed map.
    MapKeys(BTreeSet<String>),
}

/// A compiled field projection for one message type.
#[derive(Clone, Debug)]
pub struct Projection {
    descriptor: MessageDescriptor,
    fields: BTreeMap<String, Node>,
}

impl Projection {
    /// Compiles `paths` for `com.netflix.titus.<message>`; `None` when there is nothing to trim
    /// (no paths, or an unknown message).
    pub fn new(message: &str, paths: &[String]) -> Option<Projection> {
        let paths: Vec<&str> = paths
            .iter()
            .flat_map(|p| p.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if paths.is_empty() {
            return None;
        }
        let descriptor = pb::message_descriptor(message)?;
        let mut fields = BTreeMap::new();
        for path in paths {
            insert(&mut fields, &descriptor, path);
        }
        fields.insert("id".to_string(), Node::All);
        Some(Projection { descriptor, fields })
    }

    /// The projection for `Job`.
    pub fn job(paths: &[String]) -> Option<Projection> {
        Projection::new("Job", paths)
    }

    /// The projection for `Task`.
    pub fn task(paths: &[String]) -> Option<Projection> {
        Projection::new("Task", paths)
    }

    /// A copy of `message` trimmed to the projection.
    pub fn apply<M: Message + Default>(&self, message: &M) -> M {
        let Ok(mut dynamic) =
            DynamicMessage::decode(self.descriptor.clone(), message.encode_to_vec().as_slice())
        else {
            return M::default();
        };
        trim(&mut dynamic, &self.fields);
        dynamic.transcode_to::<M>().unwrap_or_default()
    }
}

fn insert(fields: &mut BTreeMap<String, Node>, descriptor: &MessageDescriptor, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let Some(field) = descriptor.get_field_by_name(head) else {
        return;
    };
    let Some(rest) = rest else {
        fields.insert(head.to_string(), Node::All);
        return;
    };
    let entry = fields.entry(head.to_string());
    if field.is_map() {
        let node = entry.or_insert_with(|| Node::MapKeys(BTreeSet::new()));
        if let Node::MapKeys(keys) = node {
            keys.insert(rest.to_string());
        }
        return;
    }
    match field.kind() {
        Kind::Message(child) => {
            let node = entry.or_insert_with(|| Node::Fields(BTreeMap::new()));
            if let Node::Fields(sub) = node {
                insert(sub, &child, rest);
            }
        }
        _ => {
            entry.or_insert(Node::All);
        }
    }
}

fn trim(message: &mut DynamicMessage, fields: &BTreeMap<String, Node>) {
    let present: Vec<_> = message.fields().map(|(f, _)| f).collect();
    for field in present {
        match fields.get(field.name()) {
            None => message.clear_field(&field),
            Some(Node::All) => {}
            Some(Node::MapKeys(keys)) => {
                if let Value::Map(map) = message.get_field_mut(&field) {
                    map.retain(|k, _| matches!(k, MapKey::String(s) if keys.contains(s)));
                }
            }
            Some(Node::Fields(sub)) => match message.get_field_mut(&field) {
                Value::Message(child) => trim(child, sub),
                Value::List(items) => {
                    for item in items.iter_mut() {
                        if let Value::Message(child) = item {
                            trim(child, sub);
                        }
                    }
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> pb::Task {
        pb::Task {
            id: "t1".into(),
            job_id: "j1".into(),
            task_context: [
                ("agent.host".to_string(), "10.0.0.1".to_string()),
                ("agent.zone".to_string(), "a".to_string()),
            ]
            .into(),
            status: Some(pb::TaskStatus {
                state: pb::task_status::TaskState::Started as i32,
                reason_code: "normal".into(),
                reason_message: "running".into(),
                timestamp: 5,
                container_state: Vec::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_nested_path_keeps_only_that_sub_field_and_the_id() {
        let p = Projection::task(&["status.state".to_string()]).unwrap();
        let out = p.apply(&task());
        assert_eq!(out.id, "t1");
        assert_eq!(out.job_id, "");
        let status = out.status.unwrap();
        assert_eq!(status.state, pb::task_status::TaskState::Started as i32);
        assert_eq!(status.reason_code, "");
        assert!(out.task_context.is_empty());
    }

    #[test]
    fn a_map_path_selects_map_keys() {
        let p = Projection::task(&["taskContext.agent.host,jobId".to_string()]).unwrap();
        let out = p.apply(&task());
        assert_eq!(out.job_id, "j1");
        assert_eq!(out.task_context.len(), 1);
        assert_eq!(out.task_context["agent.host"], "10.0.0.1");
        assert!(out.status.is_none());
    }

    #[test]
    fn no_paths_means_no_projection_and_unknown_names_are_ignored() {
        assert!(Projection::task(&[]).is_none());
        let p = Projection::task(&["nope".to_string(), "jobId".to_string()]).unwrap();
        let out = p.apply(&task());
        assert_eq!((out.id.as_str(), out.job_id.as_str()), ("t1", "j1"));
    }

    #[test]
    fn job_descriptor_paths_reach_into_nested_messages() {
        let job = pb::Job {
            id: "j".into(),
            job_descriptor: Some(pb::JobDescriptor {
                application_name: "app".into(),
                owner: Some(pb::Owner {
                    team_email: "a@b".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = Projection::job(&["jobDescriptor.owner".to_string()]).unwrap();
        let out = p.apply(&job);
        let d = out.job_descriptor.unwrap();
        assert_eq!(d.application_name, "");
        assert_eq!(d.owner.unwrap().team_email, "a@b");
    }
}
