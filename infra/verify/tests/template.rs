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

/// The local stack seeds the emulator's grant table from `infra/roles/bootstrap-grants.json`, so
/// it must be what the template grants today. `VIBEDATA_UPDATE_GRANTS=1` rewrites it.
#[test]
fn grants_file_matches_the_template() {
    let root = common::infra_root();
    let t = Template::load(&root).expect("infra/ loads");
    let file = vibedata_infra_verify::coverage::grants_file(&t).expect("every assignment expands");
    assert!(file.assignments.len() >= 10, "the bootstrap identity's assignments: {}", file.assignments.len());
    let want = serde_json::to_string_pretty(&file).unwrap() + "\n";
    let path = root.join(vibedata_infra_verify::coverage::GRANTS_FILE);
    if std::env::var_os("VIBEDATA_UPDATE_GRANTS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what infra/ grants; regenerate it: VIBEDATA_UPDATE_GRANTS=1 cargo nextest run -p vibedata-infra-verify grants_file",
        path.display()
    );
}
