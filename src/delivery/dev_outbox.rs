//! The dev outbox's files, shared by the email and SMS transports: names that sort by time
//! and writes that no reader sees half-done.

use doorman_core::outbox::ClaimedMessage;
use std::path::Path;

/// The name of a message's files in the dev outbox, without extension: `{created_at}-{id}`,
/// so that names sort by time.
pub fn dev_outbox_stem(message: &ClaimedMessage) -> String {
    format!("{}-{}", message.created_at, safe_id(message))
}

/// The message's id with only its letters, digits and '-', fit for a file name or a header.
pub fn safe_id(message: &ClaimedMessage) -> String {
    message.id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

/// Writes `dir/name` through a temporary file in the same folder (created when missing), so
/// that a reader of the folder never sees half a file; an existing file is replaced. One
/// blocking task for the three steps: each of tokio's file calls is a hand-off to a thread of
/// its own, and each hand-off takes a core from the hashing (issue 12).
pub async fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (dir, name, bytes) = (dir.to_owned(), name.to_owned(), bytes.to_owned());
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, dir.join(name))
    })
    .await
    .map_err(std::io::Error::other)?
}
