//! `metadata.managedFields` and server-side apply.
//!
//! Every write records which manager owns which fields (FieldsV1 sets). Server-side apply
//! ([`apply`]) merges an applied configuration into the live object using the type model's
//! list/map semantics, refuses to change fields other managers own unless forced
//! ([`Conflict`]), and removes fields the applier owned before but no longer applies. Ordinary
//! writes ([`track_update`]) give the writer ownership of what it changed and take it away from
//! everyone else.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::typemodel::{ListKind, TypeId, TypeModel};

/// A set of field paths in FieldsV1 form: this node is a member when `own`, plus children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    own: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    fn member() -> Self {
        Self {
            own: true,
            children: BTreeMap::new(),
        }
    }

    /// True when the set has no paths.
    pub fn is_empty(&self) -> bool {
        !self.own && self.children.is_empty()
    }

    /// Parses a `fieldsV1` object.
    pub fn from_json(value: &Value) -> Self {
        let Some(map) = value.as_object() else {
            return Self::default();
        };
        if map.is_empty() {
            return Self::member();
        }
        let mut set = Self::default();
        for (key, child) in map {
            if key == "." {
                set.own = true;
            } else {
                set.children.insert(key.clone(), Self::from_json(child));
            }
        }
        set
    }

    /// Renders as a `fieldsV1` object.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        if self.own && !self.children.is_empty() {
            map.insert(".".into(), json!({}));
        }
        for (key, child) in &self.children {
            map.insert(key.clone(), child.to_json());
        }
        Value::Object(map)
    }

    /// Adds every path of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.own |= other.own;
        for (key, child) in &other.children {
            self.children.entry(key.clone()).or_default().union(child);
        }
    }

    /// Removes every path of `other`.
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.own {
            self.own = false;
        }
        for (key, child) in &other.children {
            if let Some(mine) = self.children.get_mut(key) {
                mine.subtract(child);
                if mine.is_empty() {
                    self.children.remove(key);
                }
            }
        }
    }

    /// True when `path` is a member.
    pub fn contains(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.own,
            Some((head, rest)) => self.children.get(head).is_some_and(|c| c.contains(rest)),
        }
    }

    /// True when any member is at or under `path`.
    pub fn contains_under(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((head, rest)) => self
                .children
                .get(head)
                .is_some_and(|c| c.contains_under(rest)),
        }
    }

    /// Paths of members that have no member below them (the values an applier sets).
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect_leaves(&mut Vec::new(), &mut out);
        out
    }

    fn collect_leaves(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.own && self.children.is_empty() {
            out.push(prefix.clone());
        }
        for (key, child) in &self.children {
            prefix.push(key.clone());
            child.collect_leaves(prefix, out);
            prefix.pop();
        }
    }
}

/// Renders a FieldsV1 path the way Kubernetes prints conflicts: `.spec.containers[name="c"].image`.
pub fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = element.strip_prefix("k:") {
            let parsed: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        }
    }
    out
}

/// Which part of an object a write may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: status is not tracked (it is reset by the server).
    Main,
    /// The status subresource: only status is tracked.
    Status,
    /// No status subresource: everything is tracked.
    All,
}

impl Scope {
    fn subresource(self) -> &'static str {
        match self {
            Scope::Status => "status",
            Scope::Main | Scope::All => "",
        }
    }
}

/// The part of an object whose fields are tracked.
fn tracked(obj: &Value, scope: Scope) -> Value {
    let mut copy = match scope {
        Scope::Status => json!({"status": obj.get("status").cloned().unwrap_or(Value::Null)}),
        Scope::Main | Scope::All => obj.clone(),
    };
    if let Some(map) = copy.as_object_mut() {
        map.shift_remove("apiVersion");
        map.shift_remove("kind");
        if scope == Scope::Main {
            map.shift_remove("status");
        }
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for untracked in [
                "name",
                "namespace",
                "generateName",
                "creationTimestamp",
                "selfLink",
                "uid",
                "resourceVersion",
                "generation",
                "managedFields",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                meta.shift_remove(untracked);
            }
            if meta.is_empty() {
                map.shift_remove("metadata");
            }
        }
        if map.get("status").is_some_and(Value::is_null) {
            map.shift_remove("status");
        }
    }
    copy
}

fn is_leaf(value: &Value, model: &TypeModel, ty: TypeId) -> bool {
    match value {
        Value::Object(map) => map.is_empty() || model.is_atomic(ty),
        Value::Array(items) => items.is_empty() || model.list_kind(ty) == ListKind::Atomic,
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
    }
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    let map: Map<String, Value> = sorted
        .into_iter()
        .map(|k| (k.clone(), item.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    format!("k:{}", Value::Object(map))
}

fn value_key(item: &Value) -> String {
    format!("v:{item}")
}

/// The set of paths below a value (the value's own path excluded).
pub fn fields_of(value: &Value, model: &TypeModel, ty: TypeId) -> FieldSet {
    let mut set = FieldSet::default();
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let child_ty = model.field(ty, name);
                let entry = if is_leaf(child, model, child_ty) {
                    FieldSet::member()
                } else {
                    fields_of(child, model, child_ty)
                };
                set.children.insert(format!("f:{name}"), entry);
            }
        }
        Value::Array(items) => match model.list_kind(ty) {
            ListKind::Map(keys) => {
                let item_ty = model.items(ty);
                for item in items {
                    let mut entry = fields_of(item, model, item_ty);
                    entry.own = true;
                    set.children.insert(item_key(item, &keys), entry);
                }
            }
            ListKind::Set => {
                for item in items {
                    set.children.insert(value_key(item), FieldSet::member());
                }
            }
            ListKind::Atomic => {}
        },
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
    set
}

/// The value at a FieldsV1 path.
fn value_at<'a>(
    value: &'a Value,
    path: &[String],
    model: &TypeModel,
    ty: TypeId,
) -> Option<&'a Value> {
    let Some((head, rest)) = path.split_first() else {
        return Some(value);
    };
    if let Some(field) = head.strip_prefix("f:") {
        return value_at(value.get(field)?, rest, model, model.field(ty, field));
    }
    let items = value.as_array()?;
    if head.starts_with("k:") {
        let ListKind::Map(keys) = model.list_kind(ty) else {
            return None;
        };
        let item = items.iter().find(|i| item_key(i, &keys) == *head)?;
        return value_at(item, rest, model, model.items(ty));
    }
    items.iter().find(|i| value_key(i) == *head)
}

/// Removes the members of `remove` from `value`, keeping anything `keep` still has under them.
fn remove_fields(
    value: &mut Value,
    remove: &FieldSet,
    keep: &FieldSet,
    model: &TypeModel,
    ty: TypeId,
) {
    for (element, sub) in &remove.children {
        let keep_sub = keep.children.get(element).cloned().unwrap_or_default();
        if let Some(field) = element.strip_prefix("f:") {
            let Some(map) = value.as_object_mut() else {
                continue;
            };
            if sub.own && keep_sub.is_empty() {
                map.shift_remove(field);
            } else if let Some(child) = map.get_mut(field) {
                remove_fields(child, sub, &keep_sub, model, model.field(ty, field));
            }
            continue;
        }
        let list_kind = model.list_kind(ty);
        let item_ty = model.items(ty);
        let Some(items) = value.as_array_mut() else {
            continue;
        };
        let position = items.iter().position(|i| match &list_kind {
            ListKind::Map(keys) => item_key(i, keys) == *element,
            ListKind::Set | ListKind::Atomic => value_key(i) == *element,
        });
        let Some(position) = position else { continue };
        if sub.own && keep_sub.is_empty() {
            items.remove(position);
        } else {
            remove_fields(&mut items[position], sub, &keep_sub, model, item_ty);
        }
    }
}

/// Merges an applied configuration into `live` by the model's rules.
fn merge(live: &mut Value, applied: &Value, model: &TypeModel, ty: TypeId) {
    match (live, applied) {
        (Value::Object(lmap), Value::Object(amap)) if !model.is_atomic(ty) => {
            for (name, av) in amap {
                if av.is_null() {
                    lmap.shift_remove(name);
                    continue;
                }
                let child_ty = model.field(ty, name);
                match lmap.get_mut(name) {
                    Some(lv) => merge(lv, av, model, child_ty),
                    None => {
                        lmap.insert(name.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(litems), Value::Array(aitems)) => match model.list_kind(ty) {
            ListKind::Map(keys) => {
                let item_ty = model.items(ty);
                for aitem in aitems {
                    let key = item_key(aitem, &keys);
                    match litems.iter_mut().find(|l| item_key(l, &keys) == key) {
                        Some(litem) => merge(litem, aitem, model, item_ty),
                        None => litems.push(aitem.clone()),
                    }
                }
            }
            ListKind::Set => {
                for aitem in aitems {
                    if !litems.contains(aitem) {
                        litems.push(aitem.clone());
                    }
                }
            }
            ListKind::Atomic => *litems = aitems.clone(),
        },
        (live, applied) => *live = applied.clone(),
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    Some(Entry {
                        manager: e.get("manager")?.as_str()?.to_owned(),
                        operation: e
                            .get("operation")
                            .and_then(Value::as_str)
                            .unwrap_or("Update")
                            .to_owned(),
                        api_version: e
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        time: e
                            .get("time")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        subresource: e
                            .get("subresource")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        fields: FieldSet::from_json(e.get("fieldsV1").unwrap_or(&Value::Null)),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let rendered: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                               "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": e.fields.to_json()});
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let meta = crate::meta::metadata_mut(obj);
    if rendered.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(rendered));
    }
}

/// Paths whose value in `new` differs from `old` (or is new), as a set.
fn changed(old: &Value, new: &Value, model: &TypeModel, ty: TypeId) -> FieldSet {
    let mut set = FieldSet::default();
    match (old, new) {
        (Value::Object(omap), Value::Object(nmap)) if !model.is_atomic(ty) => {
            for (name, nv) in nmap {
                let child_ty = model.field(ty, name);
                let entry = match omap.get(name) {
                    Some(ov) if ov == nv => continue,
                    Some(ov) if !is_leaf(nv, model, child_ty) && !is_leaf(ov, model, child_ty) => {
                        changed(ov, nv, model, child_ty)
                    }
                    _ if is_leaf(nv, model, child_ty) => FieldSet::member(),
                    _ => fields_of(nv, model, child_ty),
                };
                if !entry.is_empty() {
                    set.children.insert(format!("f:{name}"), entry);
                }
            }
        }
        (Value::Array(oitems), Value::Array(nitems)) => match model.list_kind(ty) {
            ListKind::Map(keys) => {
                let item_ty = model.items(ty);
                for nitem in nitems {
                    let key = item_key(nitem, &keys);
                    let mut entry = match oitems.iter().find(|o| item_key(o, &keys) == key) {
                        Some(oitem) if oitem == nitem => continue,
                        Some(oitem) => changed(oitem, nitem, model, item_ty),
                        None => {
                            let mut whole = fields_of(nitem, model, item_ty);
                            whole.own = true;
                            whole
                        }
                    };
                    if !entry.is_empty() {
                        entry.own |= !oitems.iter().any(|o| item_key(o, &keys) == key);
                        set.children.insert(key, entry);
                    }
                }
            }
            ListKind::Set => {
                for nitem in nitems.iter().filter(|n| !oitems.contains(n)) {
                    set.children.insert(value_key(nitem), FieldSet::member());
                }
            }
            ListKind::Atomic => set.own = true,
        },
        _ => set.own = true,
    }
    set
}

/// Records ownership for a non-apply write by `manager`: it owns what it changed; nobody owns
/// what it removed. `old` is `None` on create.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    scope: Scope,
    model: &TypeModel,
    now: &str,
) {
    let new_t = tracked(new, scope);
    let mut entries = old.map(read_entries).unwrap_or_default();
    let (changed_set, removed) = match old {
        Some(old) => {
            let old_t = tracked(old, scope);
            let mut removed = fields_of(&old_t, model, model.root());
            removed.subtract(&fields_of(&new_t, model, model.root()));
            (changed(&old_t, &new_t, model, model.root()), removed)
        }
        None => (fields_of(&new_t, model, model.root()), FieldSet::default()),
    };
    if changed_set.is_empty() && removed.is_empty() {
        write_entries(new, entries);
        return;
    }
    let subresource = scope.subresource();
    for entry in &mut entries {
        entry.fields.subtract(&removed);
        if !entry.same_owner(manager, "Update", subresource) {
            entry.fields.subtract(&changed_set);
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.same_owner(manager, "Update", subresource))
    {
        Some(entry) => {
            entry.fields.union(&changed_set);
            entry.time = now.to_owned();
            entry.api_version = api_version.to_owned();
        }
        None if !changed_set.is_empty() => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Update".into(),
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            subresource: subresource.to_owned(),
            fields: changed_set,
        }),
        None => {}
    }
    write_entries(new, entries);
}

/// Fields another manager owns that an apply would change.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// Its API version.
    pub api_version: String,
    /// The field, rendered like `.spec.replicas`.
    pub field: String,
}

/// Server-side apply of `applied` by `manager` onto `live` (`None`: the object is created).
/// Returns the new object with updated managedFields.
///
/// # Errors
/// The conflicts when another manager owns a field whose value would change and `force` is off.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    scope: Scope,
    model: &TypeModel,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let root = model.root();
    let subresource = scope.subresource();
    let applied_t = tracked(applied, scope);
    let applied_set = fields_of(&applied_t, model, root);
    let mut entries = live.map(read_entries).unwrap_or_default();
    let live_t = live.map(|l| tracked(l, scope)).unwrap_or_else(|| json!({}));
    if let Some(live) = live
        && entries.is_empty()
    {
        let existing = fields_of(&live_t, model, root);
        if !existing.is_empty() {
            entries.push(Entry {
                manager: "before-first-apply".into(),
                operation: "Update".into(),
                api_version: live
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(api_version)
                    .to_owned(),
                time: now.to_owned(),
                subresource: subresource.to_owned(),
                fields: existing,
            });
        }
    }
    let mut conflicts = Vec::new();
    let mut conflicting = FieldSet::default();
    for path in applied_set.leaves() {
        let new_value = value_at(&applied_t, &path, model, root);
        let Some(old_value) = value_at(&live_t, &path, model, root) else {
            continue;
        };
        if Some(old_value) == new_value {
            continue;
        }
        for entry in entries
            .iter()
            .filter(|e| !e.same_owner(manager, "Apply", subresource))
        {
            if entry.fields.contains(&path) {
                conflicts.push(Conflict {
                    manager: entry.manager.clone(),
                    api_version: entry.api_version.clone(),
                    field: render_path(&path),
                });
                add_path(&mut conflicting, &path);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    let merged_part = match scope {
        Scope::Status => json!({"status": applied.get("status").cloned().unwrap_or(Value::Null)}),
        Scope::Main => {
            let mut a = applied.clone();
            if let Some(m) = a.as_object_mut() {
                m.shift_remove("status");
            }
            a
        }
        Scope::All => applied.clone(),
    };
    let mut to_merge = merged_part;
    if let Some(meta) = to_merge.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
        meta.shift_remove("resourceVersion");
    }
    merge(&mut result, &to_merge, model, root);
    let previous = entries
        .iter()
        .find(|e| e.same_owner(manager, "Apply", subresource))
        .map(|e| e.fields.clone());
    if let Some(mut dropped) = previous {
        dropped.subtract(&applied_set);
        let mut others = FieldSet::default();
        for entry in entries
            .iter()
            .filter(|e| !e.same_owner(manager, "Apply", subresource))
        {
            others.union(&entry.fields);
        }
        let keep = others.clone();
        dropped.subtract(&others);
        remove_fields(&mut result, &dropped, &keep, model, root);
    }
    for entry in &mut entries {
        if !entry.same_owner(manager, "Apply", subresource) {
            entry.fields.subtract(&conflicting);
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.same_owner(manager, "Apply", subresource))
    {
        Some(entry) => {
            if entry.fields != applied_set {
                entry.time = now.to_owned();
            }
            entry.fields = applied_set;
            entry.api_version = api_version.to_owned();
        }
        None => entries.push(Entry {
            manager: manager.to_owned(),
            operation: "Apply".into(),
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            subresource: subresource.to_owned(),
            fields: applied_set,
        }),
    }
    write_entries(&mut result, entries);
    Ok(result)
}

fn add_path(set: &mut FieldSet, path: &[String]) {
    match path.split_first() {
        None => set.own = true,
        Some((head, rest)) => add_path(set.children.entry(head.clone()).or_default(), rest),
    }
}

/// Formats conflicts like Kubernetes' apply error message.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {:?} using {}: {}",
            one.manager, one.api_version, one.field
        );
    }
    let mut by_manager: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in conflicts {
        by_manager
            .entry((c.manager.clone(), c.api_version.clone()))
            .or_default()
            .push(c.field.clone());
    }
    let mut msg = format!("Apply failed with {} conflicts: ", conflicts.len());
    let parts: Vec<String> = by_manager
        .into_iter()
        .map(|((manager, version), fields)| {
            let lines: Vec<String> = fields.iter().map(|f| format!("- {f}")).collect();
            format!(
                "conflicts with {manager:?} using {version}:\n{}",
                lines.join("\n")
            )
        })
        .collect();
    msg.push_str(&parts.join("\n"));
    msg
}

#[cfg(test)]
mod tests;
