//! `app config check`: the configuration has loaded and validated by the time this runs;
//! it prints every effective setting, secrets redacted, with where its value came from,
//! and the storage backend in use.

use std::process::ExitCode;

use crate::config::Loaded;

pub fn run(loaded: &Loaded) -> ExitCode {
    let rows = loaded.report();
    let width = rows
        .iter()
        .map(|(k, v, _)| k.len() + v.len() + 3)
        .max()
        .unwrap_or(0);
    for (key, value, source) in rows {
        let line = format!("{key} = {value}");
        println!("{line:<width$}  # {source}");
    }
    println!("# storage: {}", loaded.settings.storage.describe());
    println!(
        "# configuration is valid (APP_ENV={})",
        loaded.settings.app.env
    );
    ExitCode::SUCCESS
}
