//! The `vibedata-bootstrap` binary: parse, run, map the result to an exit code. Everything else
//! lives in the library.

use clap::Parser;
use vibedata_bootstrap::cli::{Cli, Command};
use vibedata_bootstrap::run::{RunOptions, Target};
use vibedata_bootstrap::{copy_cmd, logging, plan, report, run, serve};

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(dispatch(cli));
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Copy(args) => {
            // stdout carries the JSON report.
            logging::init(cli.log_format, true);
            copy_cmd::run(&args, cli.config.as_deref()).await
        }
        Command::Serve { port } => {
            // The host collects stdout as the worker's log.
            logging::init(cli.log_format, false);
            match serve::serve(serve::ServeOptions { port, config_file: cli.config }).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("vibedata-bootstrap: {e}");
                    1
                }
            }
        }
        Command::Report { html } => {
            logging::init(cli.log_format, true);
            match report::write_html(&html, cli.config.as_deref()).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("vibedata-bootstrap: {e}");
                    e.exit_code()
                }
            }
        }
        Command::Plan { json, permissions: true } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&plan::permissions_json()).expect("permissions serialize"));
            } else {
                print!("{}", plan::permissions_table());
            }
            0
        }
        Command::Plan { json, permissions: false } => {
            logging::init(cli.log_format, true);
            let (statuses, note) = match run::recorded_statuses(cli.config.as_deref()).await {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&plan::to_json(&statuses)).expect("plan serializes"));
            } else {
                print!("{}", plan::to_table(&statuses, note.as_deref()));
            }
            0
        }
        Command::Run { phase, dry_run, json, outputs_dir } => {
            // A plan printed as JSON owns stdout.
            logging::init(cli.log_format, json);
            let target = Target::parse(&phase).expect("clap accepts only run targets");
            let opts = RunOptions { dry_run, config_file: cli.config, outputs_dir, ..RunOptions::default() };
            let ran = run::run(target, &opts).await;
            for o in &ran.outputs {
                tracing::info!(phase = %o.phase, status = o.status, changes = o.changes, duration_ms = o.duration_ms, dry_run = o.dry_run,
                    outputs = %serde_json::to_string(o).unwrap_or_default(), "phase {} {}", o.phase, o.status);
            }
            if json {
                let doc = match (target, ran.plans.as_slice()) {
                    (Target::Step(_), [one]) => one.clone(),
                    (_, plans) => serde_json::Value::Array(plans.to_vec()),
                };
                println!("{}", serde_json::to_string_pretty(&doc).expect("plans serialize"));
            }
            match ran.error {
                None => 0,
                Some(e) => {
                    // The last stderr line: one sentence naming the phase, the resource and the code.
                    eprintln!("vibedata-bootstrap: {e}");
                    e.exit_code()
                }
            }
        }
    }
}
