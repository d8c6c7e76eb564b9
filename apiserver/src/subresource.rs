//! Subresources with their own shapes: `scale` (autoscaling/v1 Scale over a replicas path),
//! `pods/binding` (how a scheduler places a pod) and `pods/eviction` (delete unless a
//! PodDisruptionBudget forbids it).

use serde_json::{Value, json};

use crate::builtin::{BuiltinId, ScalePaths};
use crate::error::{ApiError, FieldError, Target, from_store};
use crate::meta;
use crate::patch::{self, PatchType};
use crate::registry::ResourceDef;
use crate::selector::{LabelRequirement, LabelSelector};
use crate::server::{Server, WriteOptions, Written};
use crate::store::Write;
use crate::write::{DeleteOptions, Subresource};

fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(obj, |cur, part| cur.get(part))
}

fn set_path(obj: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut cur = obj;
    for part in parents {
        cur = meta::as_object(cur)
            .entry((*part).to_owned())
            .or_insert_with(|| json!({}));
    }
    meta::as_object(cur).insert((*last).to_owned(), value);
}

fn scale_paths(def: &ResourceDef) -> Result<&ScalePaths, ApiError> {
    def.scale.as_ref().ok_or_else(|| {
        ApiError::NotFound(Target::new(
            &def.group,
            &format!("{}/scale", def.plural),
            "",
        ))
    })
}

/// The autoscaling/v1 Scale view of an object.
pub fn scale_of(def: &ResourceDef, obj: &Value) -> Result<Value, ApiError> {
    let paths = scale_paths(def)?;
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{field}")) {
            metadata[field] = v.clone();
        }
    }
    let replicas = get_path(obj, &paths.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status_replicas = get_path(obj, &paths.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = json!({"replicas": status_replicas});
    if let Some(selector) = paths
        .label_selector
        .as_deref()
        .and_then(|p| get_path(obj, p))
        .and_then(Value::as_str)
    {
        status["selector"] = json!(selector);
    }
    Ok(
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
              "spec": {"replicas": replicas}, "status": status}),
    )
}

/// Sets the replicas of a Scale onto the object.
fn with_replicas(def: &ResourceDef, obj: &Value, scale: &Value) -> Result<Value, ApiError> {
    let paths = scale_paths(def)?;
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(ApiError::Invalid {
            target: Target::new("autoscaling", "Scale", meta::name(obj)),
            causes: vec![FieldError::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        });
    }
    let mut new = obj.clone();
    set_path(&mut new, &paths.spec_replicas, replicas);
    Ok(new)
}

impl Server {
    /// The object patched through its Scale view.
    pub(crate) fn patch_scale(
        &self,
        def: &ResourceDef,
        obj: &Value,
        patch_type: PatchType,
        patch_value: &Value,
    ) -> Result<Value, ApiError> {
        let mut scale = scale_of(def, obj)?;
        match patch_type {
            PatchType::Json => {
                patch::json_patch(&mut scale, patch_value).map_err(ApiError::BadRequest)?
            }
            PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
                patch::merge_patch(&mut scale, patch_value)
            }
        }
        with_replicas(def, obj, &scale)
    }

    /// `PUT .../scale`.
    ///
    /// # Errors
    /// NotFound, a stale resourceVersion, invalid replicas.
    pub async fn update_scale(
        &self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        scale: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get_stored(def, namespace, name)?;
        let obj = self.from_storage(def, old.value());
        let mut new = with_replicas(def, &obj, &scale)?;
        if let Some(rv) = scale
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            new["metadata"]["resourceVersion"] = json!(rv);
        }
        let written = self
            .update(def, namespace, name, new, Subresource::Scale, opts)
            .await?;
        scale_of(def, &written.object)
    }

    /// `POST pods/{name}/binding`: assigns the pod to a node, once.
    ///
    /// # Errors
    /// NotFound, 409 when the pod is already bound, 422 without a target.
    pub async fn bind_pod(
        &self,
        namespace: &str,
        name: &str,
        binding: &Value,
    ) -> Result<(), ApiError> {
        let def = self.builtin_def(BuiltinId::Pod);
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if node.is_empty() {
            return Err(ApiError::Invalid {
                target: Target::new("", "Binding", name),
                causes: vec![FieldError::required("target.name")],
            });
        }
        loop {
            let old = self.get_stored(&def, namespace, name)?;
            let mut pod = old.value();
            if meta::is_deleting(&pod) {
                return Err(ApiError::Conflict {
                    target: Server::target(&def, name),
                    message: "pod is being deleted, cannot be assigned to a host".into(),
                });
            }
            if let Some(current) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::Conflict {
                    target: Server::target(&def, name),
                    message: format!("pod {name} is already assigned to node {current:?}"),
                });
            }
            pod["spec"]["nodeName"] = json!(node);
            let now = meta::now_rfc3339();
            let conditions = meta::as_object(
                meta::as_object(&mut pod)
                    .entry("status")
                    .or_insert_with(|| json!({})),
            )
            .entry("conditions")
            .or_insert_with(|| json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.retain(|c| c["type"] != "PodScheduled");
                list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            }
            match self.store.write(
                &def.storage,
                &old.key,
                Write::Update {
                    expected_rv: Some(old.rv),
                    value: pod,
                },
            ) {
                Ok(stored) => {
                    self.store.durable(stored.rv).await;
                    return Ok(());
                }
                Err(crate::store::StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(from_store(e, Server::target(&def, name))),
            }
        }
    }

    /// `POST pods/{name}/eviction`: deletes the pod unless a disruption budget forbids it.
    ///
    /// # Errors
    /// NotFound, 429 when a PodDisruptionBudget has no disruptions left.
    pub async fn evict_pod(
        &self,
        namespace: &str,
        name: &str,
        eviction: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let pods = self.builtin_def(BuiltinId::Pod);
        let pod = self.from_storage(&pods, self.get_stored(&pods, namespace, name)?.value());
        if is_healthy(&pod) {
            let pdbs = self.builtin_def(BuiltinId::PodDisruptionBudget);
            let (budgets, _, _) =
                self.store
                    .list(&pdbs.storage, Some(namespace), None, None, &|_| true);
            let (all_pods, _, _) =
                self.store
                    .list(&pods.storage, Some(namespace), None, None, &|_| true);
            let pod_labels = labels_map(&pod);
            for budget in budgets {
                let budget = budget.value();
                let Some(selector) = budget.pointer("/spec/selector").map(label_selector) else {
                    continue;
                };
                if !selector.matches(&pod_labels) {
                    continue;
                }
                let matching: Vec<Value> = all_pods
                    .iter()
                    .map(|p| p.value())
                    .filter(|p| selector.matches(&labels_map(p)))
                    .collect();
                let healthy = matching.iter().filter(|p| is_healthy(p)).count() as i64;
                let needed = required_healthy(&budget, matching.len() as i64);
                if healthy - 1 < needed {
                    return Err(ApiError::TooManyRequests {
                        message:
                            "Cannot evict pod as it would violate the pod's disruption budget."
                                .into(),
                        causes: vec![(
                            "DisruptionBudget".into(),
                            format!(
                                "The disruption budget {} needs {needed} healthy pods and has {healthy} currently",
                                meta::name(&budget)
                            ),
                        )],
                    });
                }
            }
        }
        let options = DeleteOptions {
            grace_period_seconds: eviction
                .pointer("/deleteOptions/gracePeriodSeconds")
                .and_then(Value::as_i64),
            ..DeleteOptions::default()
        };
        self.delete(&pods, namespace, name, &options, opts).await
    }
}

fn is_healthy(pod: &Value) -> bool {
    !meta::is_deleting(pod)
        && pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

fn labels_map(obj: &Value) -> std::collections::BTreeMap<String, String> {
    meta::labels(obj).into_iter().collect()
}

/// A metav1.LabelSelector (matchLabels + matchExpressions) as a selector.
pub fn label_selector(selector: &Value) -> LabelSelector {
    let mut reqs = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            reqs.push(LabelRequirement::Equals(
                k.clone(),
                v.as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr["key"].as_str().unwrap_or_default().to_owned();
        let values: Vec<String> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        reqs.push(match expr["operator"].as_str().unwrap_or_default() {
            "In" => LabelRequirement::In(key, values),
            "NotIn" => LabelRequirement::NotIn(key, values),
            "Exists" => LabelRequirement::Exists(key),
            _ => LabelRequirement::DoesNotExist(key),
        });
    }
    LabelSelector(reqs)
}

/// Healthy pods a budget requires, from minAvailable or maxUnavailable (ints or percentages).
fn required_healthy(budget: &Value, expected: i64) -> i64 {
    let amount = |v: &Value| -> i64 {
        match v {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => {
                let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
                (pct * expected + 99) / 100
            }
            _ => 0,
        }
    };
    if let Some(min) = budget.pointer("/spec/minAvailable") {
        return amount(min);
    }
    if let Some(max) = budget.pointer("/spec/maxUnavailable") {
        return expected - amount(max);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_count_like_the_disruption_controller() {
        assert_eq!(
            required_healthy(&json!({"spec": {"minAvailable": 2}}), 5),
            2
        );
        assert_eq!(
            required_healthy(&json!({"spec": {"minAvailable": "50%"}}), 5),
            3
        );
        assert_eq!(
            required_healthy(&json!({"spec": {"maxUnavailable": 1}}), 5),
            4
        );
        let sel = label_selector(
            &json!({"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}),
        );
        let labels = [
            ("app".to_owned(), "a".to_owned()),
            ("tier".to_owned(), "x".to_owned()),
        ]
        .into_iter()
        .collect();
        assert!(sel.matches(&labels));
    }

    #[test]
    fn scale_reads_and_writes_the_replicas_path() {
        let registry = crate::registry::Registry::new();
        let def = registry.get("apps", "v1", "deployments").unwrap();
        let obj = json!({"metadata": {"name": "d", "resourceVersion": "4"}, "spec": {"replicas": 2}, "status": {"replicas": 1}});
        let scale = scale_of(&def, &obj).unwrap();
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["replicas"], 1);
        let server_obj = with_replicas(&def, &obj, &json!({"spec": {"replicas": 5}})).unwrap();
        assert_eq!(server_obj["spec"]["replicas"], 5);
        assert!(with_replicas(&def, &obj, &json!({"spec": {"replicas": -1}})).is_err());
    }
}
