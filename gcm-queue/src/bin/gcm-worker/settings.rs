//! Where settings come from: the command line, then `GCM_*` variables (clap's `env`), then
//! a TOML file (`--config`): its top-level keys for every command, its `[<command>]` table
//! for that command, each key a flag's long name. The file's values become clap's
//! defaults, so that precedence is clap's own.

use std::path::PathBuf;

use clap::Parser as _;

use crate::Cli;
use crate::projects::{self, Platform};

/// The command line, with the config file's values as defaults: its top-level keys for
/// every command, its `[<command>]` table for that command; and the file's `[projects.*]`
/// and `[webhook]`.
pub(crate) fn parse_cli() -> Result<(Cli, Platform), String> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    let path = args
        .iter()
        .position(|arg| arg == "--config")
        .and_then(|at| args.get(at + 1).map(PathBuf::from))
        .or_else(|| args.iter().find_map(|arg| arg.to_str()?.strip_prefix("--config=").map(PathBuf::from)))
        .or_else(|| std::env::var_os("GCM_CONFIG").map(PathBuf::from));
    let mut configs = Platform::default();
    if let Some(path) = path {
        let text =
            std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let names: Vec<String> = command.get_subcommands().map(|sub| sub.get_name().to_owned()).collect();
        let chosen =
            args.iter().skip(1).filter_map(|arg| arg.to_str()).find(|arg| names.iter().any(|name| name == arg));
        let Some(chosen) = chosen.map(str::to_owned) else {
            // No command: clap says what is missing (projects are read for none).
            return Ok((Cli::parse(), configs));
        };
        let mut settings = Vec::new();
        let mut unknown = Vec::new();
        for (key, value) in &table {
            let id = key.replace('-', "_");
            match value {
                toml::Value::Table(_) if key == "projects" => {
                    configs.projects =
                        projects::from_toml(value.clone()).map_err(|error| format!("{}: {error}", path.display()))?;
                }
                toml::Value::Table(_) if key == "webhook" => {
                    configs.webhook = Some(
                        projects::webhook_from_toml(value.clone())
                            .map_err(|error| format!("{}: {error}", path.display()))?,
                    );
                }
                toml::Value::Table(section) if names.contains(key) => {
                    if *key == chosen {
                        settings.extend(section.iter().map(|(key, value)| (key.clone(), value.clone(), true)));
                    }
                }
                // A global flag (`log-format`).
                value if command.get_arguments().any(|arg| arg.get_id() == id.as_str()) => {
                    let values = defaults(value.clone());
                    command = command.mut_arg(id, |arg| arg.default_values(values));
                }
                value => {
                    // Any other top-level key is some command's flag.
                    if !command.get_subcommands().any(|sub| sub.get_arguments().any(|arg| arg.get_id() == id.as_str()))
                    {
                        unknown.push(key.clone());
                    }
                    settings.push((key.clone(), value.clone(), false));
                }
            }
        }
        command = command.mut_subcommand(&chosen, |mut sub| {
            for (key, value, own) in settings {
                let id = key.replace('-', "_");
                if !sub.get_arguments().any(|arg| arg.get_id() == id.as_str()) {
                    // A top-level key this command does not take is another command's.
                    if own {
                        unknown.push(format!("[{chosen}] {key}"));
                    }
                    continue;
                }
                let values = defaults(value);
                sub = sub.mut_arg(id, |arg| arg.default_values(values).required(false));
            }
            sub
        });
        if !unknown.is_empty() {
            return Err(format!("{}: unknown settings {}", path.display(), unknown.join(", ")));
        }
    }
    let matches = command.get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).map_err(|error| error.to_string())?;
    Ok((cli, configs))
}

/// A setting's value as clap's defaults: each item of an array, or the one value. (clap
/// keeps defaults for the program's life: they are leaked once, at start.)
fn defaults(value: toml::Value) -> Vec<&'static str> {
    let values: Vec<String> = match value {
        toml::Value::Array(items) => items.into_iter().map(scalar_text).collect(),
        other => vec![scalar_text(other)],
    };
    values.into_iter().map(|value| &*Box::leak(value.into_boxed_str())).collect()
}

/// A TOML value as the command line would spell it.
fn scalar_text(value: toml::Value) -> String {
    match value {
        toml::Value::String(text) => text,
        toml::Value::Integer(number) => number.to_string(),
        toml::Value::Float(number) => number.to_string(),
        toml::Value::Boolean(flag) => flag.to_string(),
        toml::Value::Datetime(time) => time.to_string(),
        // Refused by the argument's parser with the key's name.
        toml::Value::Array(_) | toml::Value::Table(_) => "<a table or nested array>".to_owned(),
    }
}
