//! The real infra/ passes every check against the plan of the binary built with it.

mod common;

use vibedata_infra_verify::Template;

#[test]
fn the_template_passes_every_check() {
    let plan = common::plan();
    let findings = vibedata_infra_verify::check_dir(&common::infra_root(), &plan).expect("infra/ loads");
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "{} finding(s):\n{}", findings.len(), lines.join("\n"));
}

#[test]
fn main_has_one_module_per_phase_in_plan_order() {
    let plan = common::plan();
    let t = Template::load(&common::infra_root()).expect("infra/ loads");
    let modules: Vec<&str> = t
        .main()
        .decls
        .iter()
        .filter(|d| d.kind == vibedata_infra_verify::bicep::DeclKind::Module)
        .map(|d| d.name.as_str())
        .collect();
    let want: Vec<String> = plan.iter().map(|p| p.module_symbol()).collect();
    assert_eq!(modules, want, "main.bicep's modules, in file order, are the plan's phases");
    assert_eq!(plan.len(), 15);
}

#[test]
fn every_file_parses_without_error_nodes() {
    let t = Template::load(&common::infra_root()).expect("infra/ loads");
    assert!(t.files.len() >= 14, "found only {:?}", t.files.keys().collect::<Vec<_>>());
    for f in t.files.values() {
        assert!(f.syntax_errors.is_empty(), "{}: {:?}", f.path, f.syntax_errors);
    }
}
