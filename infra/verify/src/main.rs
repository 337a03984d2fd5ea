//! `vibedata-infra-verify`: the checks of infra/ and of a built package, for scripts/package and
//! for people. Exit 0 when clean, 1 with findings (one per line), 2 on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use vibedata_infra_verify::{package, plan, Template};

const USAGE: &str = "usage: vibedata-infra-verify check [--infra DIR] [--bootstrap BIN | --plan-json FILE]
       vibedata-infra-verify grants [--infra DIR]   (the assignments to the bootstrap identity, expanded, as JSON)
       vibedata-infra-verify package DIR [--infra DIR] [--bootstrap BIN | --plan-json FILE] [--no-compile] [--no-functions]";

struct Args {
    command: String,
    package_dir: Option<PathBuf>,
    infra: PathBuf,
    bootstrap: Option<PathBuf>,
    plan_json: Option<PathBuf>,
    expect: package::Expect,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("no command")?;
    let mut args = Args {
        command,
        package_dir: None,
        infra: PathBuf::from("infra"),
        bootstrap: None,
        plan_json: None,
        expect: package::Expect::default(),
    };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().map(PathBuf::from).ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--infra" => args.infra = value("--infra")?,
            "--bootstrap" => args.bootstrap = Some(value("--bootstrap")?),
            "--plan-json" => args.plan_json = Some(value("--plan-json")?),
            "--no-compile" => args.expect.no_compile = true,
            "--no-functions" => args.expect.no_functions = true,
            "-h" | "--help" => return Err(String::new()),
            other if args.command == "package" && args.package_dir.is_none() && !other.starts_with('-') => {
                args.package_dir = Some(PathBuf::from(other))
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn run(args: &Args) -> Result<usize, String> {
    if args.command == "grants" {
        let template = Template::load(&args.infra).map_err(|e| e.to_string())?;
        let file = vibedata_infra_verify::coverage::grants_file(&template)?;
        println!("{}", serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?);
        return Ok(0);
    }
    let phases = match (&args.plan_json, &args.bootstrap) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            plan::from_json(&text)
        }
        (None, Some(b)) => plan::from_binary(b),
        (None, None) => plan::from_binary(&plan::default_binary()),
    }
    .map_err(|e| e.to_string())?;
    let template = Template::load(&args.infra).map_err(|e| e.to_string())?;
    let mut findings = vibedata_infra_verify::check(&template, &phases);
    match args.command.as_str() {
        "check" => {}
        "package" => {
            let dir = args.package_dir.as_ref().ok_or("package needs the package directory")?;
            if !dir.is_dir() {
                return Err(format!("{} is not a directory", dir.display()));
            }
            findings.extend(package::check(dir, &template, args.expect));
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    for f in &findings {
        println!("{f}");
    }
    Ok(findings.len())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vibedata-infra-verify: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(0) => {
            eprintln!("vibedata-infra-verify: no findings");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            eprintln!("vibedata-infra-verify: {n} finding(s)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("vibedata-infra-verify: error: {e}");
            ExitCode::from(2)
        }
    }
}
