//! Shared helpers of the validation rule tables: valid base specs and the case runner.

#![allow(dead_code)]

use titus_crds::job::container::SignedAddressAllocation;
use titus_crds::validation::check_job;
use titus_crds::{
    JobDisruptionBudget, TitusJobSpec, ValidationConfig, ViolationKind, sanitize, validate_job,
};

/// A sanitized batch job that passes validation.
pub fn batch() -> TitusJobSpec {
    let mut spec = TitusJobSpec::batch(3);
    sanitize(&mut spec);
    spec
}

/// A sanitized service job that passes validation.
pub fn service() -> TitusJobSpec {
    let mut spec = TitusJobSpec::service(1, 2, 10);
    sanitize(&mut spec);
    spec
}

/// One rule case: a spec breaking one rule and the violation it must report.
pub struct Case {
    pub name: &'static str,
    pub spec: TitusJobSpec,
    pub config: ValidationConfig,
    pub field: &'static str,
    pub titus_field: &'static str,
    pub description: String,
    pub kind: ViolationKind,
}

pub fn case(
    name: &'static str,
    base: TitusJobSpec,
    change: impl FnOnce(&mut TitusJobSpec),
    field: &'static str,
    titus_field: &'static str,
    description: &str,
) -> Case {
    let mut spec = base;
    change(&mut spec);
    Case {
        name,
        spec,
        config: ValidationConfig::default(),
        field,
        titus_field,
        description: description.to_string(),
        kind: ViolationKind::Hard,
    }
}

pub fn budget(change: impl FnOnce(&mut JobDisruptionBudget)) -> impl FnOnce(&mut TitusJobSpec) {
    move |s: &mut TitusJobSpec| {
        let mut b = JobDisruptionBudget::self_managed_unlimited(60_000);
        b.self_managed = None;
        change(&mut b);
        s.disruption_budget = Some(b);
    }
}

pub fn allocation(uuid: &str) -> SignedAddressAllocation {
    let mut a = SignedAddressAllocation::default();
    a.address_allocation.uuid = uuid.to_string();
    a
}

/// Asserts that each case reports its field paths and message, is refused when hard, and breaks
/// no other rule.
#[track_caller]
pub fn assert_cases(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let errors = check_job(&case.spec, &case.config);
        let found = errors
            .iter()
            .find(|e| e.field == case.field && e.description == case.description);
        match found {
            Some(e) if e.titus_field == case.titus_field && e.kind == case.kind => {}
            Some(e) => failures.push(format!("{}: wrong titus field/kind {e:?}", case.name)),
            None => failures.push(format!(
                "{}: expected {} {:?}, got {errors:#?}",
                case.name, case.field, case.description
            )),
        }
        let others: Vec<_> = errors.iter().filter(|e| e.field != case.field).collect();
        if !others.is_empty() && !case.name.starts_with("both") && !case.name.starts_with("neither")
        {
            failures.push(format!("{} also broke {others:#?}", case.name));
        }
        if case.kind == ViolationKind::Hard && validate_job(&case.spec).is_ok() {
            failures.push(format!("{} must be refused", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
