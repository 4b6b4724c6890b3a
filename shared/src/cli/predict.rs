//! `plexe predict NAME[/VERSION] --file in.csv [-o out.csv]`: a CSV of any length, sent in
//! batches of at most 10,000 rows, the predictions appended to each row.

use super::CliError;
use super::output::{bytes_bar, print_json};
use super::remote::RemoteArgs;
use crate::client::predictions::MAX_BATCH_ROWS;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    plexe predict titanic --file passengers.csv -o predicted.csv\n  \
    plexe predict titanic/v2 --file passengers.csv > predicted.csv")]
pub struct PredictArgs {
    /// The model, and optionally its version: `titanic`, `titanic/v2` (default: latest, the
    /// newest READY version; it must be deployed).
    pub model: String,
    /// The input CSV (a header row, then one row per prediction).
    #[arg(long)]
    pub file: PathBuf,
    /// Where to write the CSV with the predictions [default: stdout].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Rows per request (1 to 10,000).
    #[arg(long, default_value_t = MAX_BATCH_ROWS)]
    pub batch_rows: usize,
}

/// `name/version` → (`name`, `version`), the version `latest` when absent.
pub fn split_model(model: &str) -> Result<(&str, &str), CliError> {
    let (name, version) = match model.split_once('/') {
        Some((name, version)) => (name, version),
        None => (model, "latest"),
    };
    if name.is_empty() || version.is_empty() || version.contains('/') {
        return Err(CliError::Usage(format!(
            "{model:?} is not NAME or NAME/VERSION"
        )));
    }
    Ok((name, version))
}

pub async fn run(remote: RemoteArgs, args: PredictArgs) -> Result<(), CliError> {
    let client = remote.client()?;
    let (name, version) = split_model(&args.model)?;
    let input = std::fs::File::open(&args.file)
        .map_err(|e| CliError::Io(format!("{}: {e}", args.file.display())))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    // The output goes to a temporary file beside the destination first, so a failure leaves
    // no half-written file.
    let (mut staged, stdout) = match &args.output {
        Some(path) => {
            let folder = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let file = crate::client::staged_file(&folder)?;
            (Some(file), None)
        }
        None => (None, Some(std::io::stdout().lock())),
    };
    let bar = bytes_bar(&format!("predicting {name} {version}"));
    bar.set_length(size);
    let output: Box<dyn Write> = match (&mut staged, stdout) {
        (Some(file), _) => Box::new(std::io::BufWriter::new(file.as_file_mut())),
        (None, Some(out)) => Box::new(out),
        (None, None) => return Err(CliError::Io("no output".into())),
    };
    let result = client
        .predict_csv(
            name,
            version,
            std::io::BufReader::new(input),
            output,
            args.batch_rows,
            &bar,
        )
        .await;
    bar.finish_and_clear();
    let run = result?;
    if let (Some(file), Some(path)) = (staged, &args.output) {
        file.persist(path)
            .map_err(|e| CliError::Io(format!("{}: {}", path.display(), e.error)))?;
        if remote.json {
            return print_json(&serde_json::json!({
                "model_name": name,
                "model_version": version,
                "rows": run.rows,
                "batches": run.batches,
                "output": path.display().to_string(),
            }));
        }
        println!(
            "Predicted {} rows in {} batch{} into {}.",
            run.rows,
            run.batches,
            if run.batches == 1 { "" } else { "es" },
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_version_split_at_the_slash() {
        assert_eq!(split_model("titanic").ok(), Some(("titanic", "latest")));
        assert_eq!(split_model("titanic/v2").ok(), Some(("titanic", "v2")));
        assert!(split_model("titanic/").is_err());
        assert!(split_model("/v2").is_err());
        assert!(split_model("a/b/c").is_err());
    }
}
