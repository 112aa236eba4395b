//! `amplitude-posthog resume`: after a crash, make Vector re-read the gzip exports it was in
//! the middle of.

use std::path::PathBuf;
use std::process::ExitCode;

use amplitude_posthog::vector::resume::{FileState, resume};

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// Vector's data_dir (see vector.toml).
    #[arg(long, value_name = "DIR", default_value = "vector-data")]
    pub data_dir: PathBuf,
    /// The id of the file source in vector.toml.
    #[arg(long, default_value = "amplitude")]
    pub source: String,
    /// The directories the source reads (the `include` globs' roots); repeat for several.
    #[arg(long = "export", value_name = "DIR", default_value = "export")]
    pub export_dirs: Vec<PathBuf>,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let report = resume(
        &args.data_dir,
        &args.source,
        &args.export_dirs,
        args.dry_run,
    )?;
    let (mut complete, mut not_started) = (0, 0);
    for file in &report.files {
        match file {
            FileState::Complete { .. } => complete += 1,
            FileState::NotStarted { .. } => not_started += 1,
            FileState::Partial {
                path,
                position,
                length,
                newline_added,
            } => {
                let verb = if report.dry_run {
                    "would re-read"
                } else {
                    "will re-read"
                };
                eprintln!(
                    "{verb} {} (delivered {position} of {length} bytes)",
                    path.display()
                );
                if *newline_added {
                    eprintln!(
                        "{} {}: its last line had no newline, which Vector never reads",
                        if report.dry_run {
                            "would add a newline to"
                        } else {
                            "added a newline to"
                        },
                        path.display()
                    );
                }
            }
            FileState::Plain { path, position } => eprintln!(
                "kept {} (plain file, Vector resumes it at byte {position})",
                path.display()
            ),
            FileState::Unknown {
                device,
                inode,
                position,
            } => {
                eprintln!(
                    "kept a checkpoint of a file no longer in the export directory (device {device}, inode {inode}, position {position})"
                )
            }
            FileState::Unreadable { path, error } => {
                eprintln!("kept {}: cannot decompress it: {error}", path.display())
            }
        }
    }
    let action = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    eprintln!(
        "{action} {} checkpoint(s) in {}; {complete} file(s) complete, {not_started} not started",
        report.checkpoints_removed,
        report.checkpoints_file.display()
    );
    Ok(ExitCode::SUCCESS)
}
