//! The operator commands that change users from the command line:
//! invite an admin, erase a user, import a CSV file.

use anyhow::Context as _;
use secureai_csv::CsvFile;
use secureai_domain::RequestContext;

use crate::Config;
use crate::wiring::{public_url, wire};

/// Invites an admin from the command line; returns the user's email and the
/// activation link (also emailed).
///
/// # Errors
/// When the invitation is refused (email taken, invalid input, seats).
pub async fn invite_admin(
    config: &Config,
    email: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let wiring = wire(config).await?;
    let invited = wiring
        .service
        .invitations
        .invite_admin_as_operator(email, name, &RequestContext::command_line())
        .await?;
    let link = format!(
        "{}/invitations/accept?token={}",
        public_url(config, config.listen),
        invited.token.expose()
    );
    wiring.store.close().await?;
    Ok((invited.user.email.to_string(), link))
}

/// Erases a user's personal data from the command line; returns their id.
///
/// # Errors
/// When the user is unknown or the last active admin.
pub async fn erase_user(config: &Config, email: &str) -> anyhow::Result<String> {
    let wiring = wire(config).await?;
    let erased =
        wiring.service.users.erase_user_as_operator(email, &RequestContext::command_line()).await?;
    wiring.store.close().await?;
    Ok(erased.id.to_string())
}

/// Resets a person's second factors on the operator's behalf
/// (`secureai users reset-mfa`).
///
/// # Errors
/// When no user has this email, they have no second factor, or the
/// database fails.
pub async fn reset_mfa(config: &Config, email: &str) -> anyhow::Result<()> {
    use secureai_domain::mfa::service::ResetMfaError;
    let wiring = wire(config).await?;
    let reset = wiring.service.mfa.reset_as_operator(email, &RequestContext::command_line()).await;
    wiring.store.close().await?;
    match reset {
        Ok(_) => Ok(()),
        Err(ResetMfaError::NotFound) => anyhow::bail!("no user has this email: {email}"),
        Err(error) => Err(error.into()),
    }
}

/// What `secureai users import` did.
pub struct ImportOutcome {
    /// The import's record (counts, warnings).
    pub record: secureai_domain::imports::models::ImportRecord,
    /// Where the skipped rows were written, if any were skipped.
    pub report: Option<std::path::PathBuf>,
}

/// Imports a CSV file on the operator's behalf, streaming it in batches
/// (no row limit), calling `progress` with the rows done; writes the
/// skipped rows (`line,email,field,reason`) to `report`.
///
/// # Errors
/// When the file cannot be read or is refused as a whole, or the database
/// fails.
pub async fn import_users(
    config: &Config,
    file: &std::path::Path,
    dry_run: bool,
    report: &std::path::Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<ImportOutcome> {
    use secureai_domain::imports::models::ImportMode;
    use secureai_domain::imports::service::ImportRequest;

    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let wiring = wire(config).await?;
    let request = ImportRequest {
        file_name: file
            .file_name()
            .map_or_else(|| "import.csv".into(), |n| n.to_string_lossy().into_owned()),
        mode: if dry_run { ImportMode::Preview } else { ImportMode::Commit },
        max_rows: None,
        keep_all_rows: false,
    };
    let record = wiring
        .service
        .imports
        .import_file_as_operator(
            &mut CsvFile::new(std::io::BufReader::with_capacity(1 << 16, input)),
            &request,
            &RequestContext::command_line(),
            progress,
        )
        .await?;
    let mut written = None;
    if record.counts.skipped > 0 {
        let mut writer = csv::Writer::from_path(report)
            .with_context(|| format!("cannot write the report {}", report.display()))?;
        writer.write_record(secureai_csv::SKIPPED_ROWS_HEADER)?;
        let mut after = 0;
        loop {
            let rows =
                wiring.service.imports.skipped_rows_as_operator(record.id, after, 5000).await?;
            let Some(last) = rows.last() else { break };
            after = last.line;
            secureai_csv::write_skipped_rows(&mut writer, &rows)?;
        }
        writer.flush()?;
        written = Some(report.to_path_buf());
    }
    wiring.store.close().await?;
    Ok(ImportOutcome { record, report: written })
}
