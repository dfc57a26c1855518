//! A full disk under SQLite (issue 13). `doorman serve` runs with its database on a tmpfs of
//! 8 MiB mounted in a mount namespace of its own (`unshare -rm`, so no privilege is needed
//! beyond user namespaces); the test reaches that mount through `/proc/<pid>/root` to fill it
//! with a file and to delete the file again.
//!
//! While the disk is full, requests that must write answer 503 `storage_full` in the usual
//! error shape, with words a person understands (not a 500, not a panic), and nothing of them
//! is stored; reads that need no write still work; the database stays sound (`PRAGMA
//! integrity_check`). Once space is back, the same requests succeed, with no restart.

use crate::helpers::{BASE_URL, PASSWORD, Response, TestApp, csrf_of, eventually, temp_dir};
use crate::replicas::listening_port;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `doorman serve` in a mount namespace of its own, its data folder on a small tmpfs.
struct ServerOnTmpfs {
    child: Child,
    port: u16,
    /// The data folder, as the server sees it.
    data: PathBuf,
    dir: PathBuf,
}

impl ServerOnTmpfs {
    fn start() -> Self {
        let dir = temp_dir();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        // The accounts are made inside the namespace too: from outside, the mount is only seen
        // through /proc/<pid>/root once the server runs.
        let script = r#"set -e
mount -t tmpfs -o size=8m tmpfs "$DATA"
for name in maria ana; do
  printf '%s\n' "$PASSWORD" | "$DOORMAN" user add --username $name --email $name@example.com --user-type client --country US --password-stdin >/dev/null
done
exec "$DOORMAN" serve --listen 127.0.0.1:0"#;
        let mut child = Command::new("unshare")
            .args(["-rm", "sh", "-c", script])
            .current_dir(&dir)
            .env("DATA", &data)
            .env("PASSWORD", PASSWORD)
            .env("DOORMAN", env!("CARGO_BIN_EXE_doorman"))
            .env("DOORMAN_DATABASE_URL", format!("sqlite://{}/doorman.db?mode=rwc", data.display()))
            .env("DOORMAN_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("DOORMAN_MAIL_DIR", dir.join("mail"))
            .env("DOORMAN_BASE_URL", BASE_URL)
            .env("DOORMAN_CLIENT_IP_HEADER", "X-Real-IP")
            .env("DOORMAN_MAIL_WORKER", "true")
            .env("DOORMAN_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("unshare (util-linux) must be installed");
        // Port 0, and the port read from the line `doorman serve` prints once it listens (a
        // port picked free beforehand can be taken by another test's server first). No line
        // means the server did not start: `wait_ready` then says why, with its log.
        let port = child.stdout.take().and_then(listening_port).unwrap_or(0);
        Self { child, port, data, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "doorman serve on a tmpfs could not start ({status}). This test needs `unshare -rm` (user and mount \
                     namespaces) and a tmpfs mount inside it; if they are not permitted here, it cannot prove the \
                     disk-full behaviour. Its output:\n{}",
                    self.log()
                );
            }
            if let Ok(response) = client.get(self.url("/readyz")).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("doorman serve on a tmpfs was not ready within 30 s:\n{}", self.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A path in the data folder, as seen from outside the namespace.
    fn outside(&self, name: &str) -> PathBuf {
        let inside = self.data.strip_prefix("/").unwrap();
        Path::new(&format!("/proc/{}/root", self.child.id())).join(inside).join(name)
    }

    /// Runs `sql` on the server's database from inside its mount namespace (`nsenter`, with
    /// Python's sqlite3; SQLite itself resolves the /proc/<pid>/root link to "/" and would open
    /// a file of the same name outside) and returns the rows, one line each.
    fn sql(&self, sql: &str) -> Vec<String> {
        const SCRIPT: &str = "import sqlite3, sys\n\
            db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
            for row in db.execute(sys.argv[2]).fetchall():\n    print('|'.join(map(str, row)))\n";
        let output = Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-U", "-m", "python3", "-c", SCRIPT])
            .arg(self.data.join("doorman.db"))
            .arg(sql)
            .output()
            .expect("nsenter (util-linux) and python3 must be installed");
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
    }
}

impl Drop for ServerOnTmpfs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(server: &ServerOnTmpfs, client: &reqwest::Client, ip: &str, password: &str) -> Response {
    let request = client.post(server.url("/api/v1/login")).header("X-Real-IP", ip).json(&json!({ "login": "maria", "password": password }));
    Response::read(request.send().await.unwrap()).await
}

/// Requests for one login within a minute are merged into one (the second writes nothing), so
/// each phase of the test asks for a different one.
async fn forgot(server: &ServerOnTmpfs, ip: &str, login: &str) -> Response {
    let request =
        reqwest::Client::new().post(server.url("/api/v1/password/forgot")).header("X-Real-IP", ip).json(&json!({ "login": login }));
    Response::read(request.send().await.unwrap()).await
}

async fn change_password(server: &ServerOnTmpfs, client: &reqwest::Client, from: &str, to: &str) -> Response {
    let request = client
        .post(server.url("/api/v1/account/password"))
        .header("X-Real-IP", "192.0.2.90")
        .json(&json!({ "current_password": from, "new_password": to }));
    Response::read(request.send().await.unwrap()).await
}

/// The answer to a write on a full disk: 503 `storage_full`, said plainly, with `Retry-After`.
fn assert_storage_full(response: &Response, what: &str) {
    assert_eq!(response.status, 503, "{what}: {}", response.text);
    assert_eq!(response.error_code(), "storage_full", "{what}");
    let message = response.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("storage space") && message.contains("Nothing was changed"), "{what}: {message}");
    assert!(response.header("retry-after").is_some(), "{what}");
}

/// The reset emails in the dev outbox (a folder outside the tmpfs).
fn reset_emails(server: &ServerOnTmpfs) -> usize {
    let mails = std::fs::read_dir(server.dir.join("mail")).into_iter().flatten().flatten();
    mails.filter(|e| std::fs::read_to_string(e.path()).unwrap_or_default().contains("Subject: Reset your")).count()
}

/// Rows that writes refused on a full disk must not have left behind: sessions, jobs, tokens.
fn counts(server: &ServerOnTmpfs) -> Vec<String> {
    server.sql("SELECT (SELECT COUNT(*) FROM sessions), (SELECT COUNT(*) FROM jobs), (SELECT COUNT(*) FROM recovery_tokens)")
}

fn integrity(server: &ServerOnTmpfs) -> Vec<String> {
    server.sql("PRAGMA integrity_check")
}

#[tokio::test]
async fn on_a_full_disk_writes_answer_503_storage_full_reads_work_and_nothing_is_corrupted() {
    let mut server = ServerOnTmpfs::start();
    server.wait_ready().await;
    let browser = TestApp::new_client();
    assert_eq!(login(&server, &browser, "192.0.2.80", PASSWORD).await.status, 200);
    assert_eq!(forgot(&server, "192.0.2.81", "maria").await.status, 202);
    eventually("the first reset email", 30, async || (reset_emails(&server) >= 1).then_some(())).await;
    let visitor = TestApp::new_client();
    let page = Response::read(visitor.get(server.url("/login")).send().await.unwrap()).await;
    let csrf = csrf_of(&page.text);

    // The write-ahead log is folded into the database and cut to nothing first, so that the
    // very next write needs new space (a log with room left would take a few more writes
    // before it must grow; those would simply succeed).
    let checkpoint = server.sql("PRAGMA wal_checkpoint(TRUNCATE)");
    assert_eq!(checkpoint, ["0|0|0"], "the log was folded in and emptied (busy|pages|checkpointed)");
    let before = counts(&server);
    let filler = server.outside("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let full = loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.flush()) {
            break e;
        }
    };
    assert_eq!(full.kind(), std::io::ErrorKind::StorageFull, "the disk is full: {full}");
    drop(file);

    // Writes: a login, a reset request, a password change, and a form post to a page.
    for (i, ip) in ["192.0.2.82", "192.0.2.83", "192.0.2.84"].iter().enumerate() {
        let refused = login(&server, &TestApp::new_client(), ip, PASSWORD).await;
        assert_storage_full(&refused, &format!("login {i}"));
        assert!(refused.set_cookies().iter().all(|c| !c.contains("doorman_session=")), "no session cookie: {:?}", refused.set_cookies());
    }
    assert_storage_full(&forgot(&server, "192.0.2.85", "ana").await, "forgot password");
    assert_storage_full(&change_password(&server, &browser, PASSWORD, "tidal lantern orchard").await, "password change");
    let form = visitor.post(server.url("/login")).form(&[("login", "maria"), ("password", PASSWORD), ("csrf", &csrf)]);
    let form = Response::read(form.send().await.unwrap()).await;
    assert_eq!(form.status, 503, "{}", form.text);
    assert!(form.text.contains("run out of storage space"), "the page says why: {}", form.text);

    // Reads that need no write still work.
    for path in ["/healthz", "/readyz", "/api/v1/banners", "/api/v1/help/articles", "/login", "/help"] {
        let read = Response::read(reqwest::get(server.url(path)).await.unwrap()).await;
        assert_eq!(read.status, 200, "{path}: {}", read.text);
    }
    let session = Response::read(browser.get(server.url("/api/v1/session")).send().await.unwrap()).await;
    assert_eq!(session.status, 200, "a signed-in read: {}", session.text);
    assert_eq!(integrity(&server), ["ok"], "the database is sound while the disk is full");
    assert_eq!(counts(&server), before, "the refused writes left no session, job or token behind");

    // Space comes back: the same requests succeed, with no restart. The refused password
    // change changed nothing: the old password still signs in.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(counts(&server), before);
    let signed_in = login(&server, &TestApp::new_client(), "192.0.2.86", PASSWORD).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert_eq!(forgot(&server, "192.0.2.87", "ana").await.status, 202);
    let changed = change_password(&server, &browser, PASSWORD, "tidal lantern orchard").await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(login(&server, &TestApp::new_client(), "192.0.2.88", "tidal lantern orchard").await.status, 200);
    assert_eq!(login(&server, &TestApp::new_client(), "192.0.2.89", PASSWORD).await.status, 401, "the old password is gone");
    // The reset asked for after the disk was freed is delivered (the worker went on too).
    eventually("the second reset email", 30, async || (reset_emails(&server) >= 2).then_some(())).await;
    assert_eq!(integrity(&server), ["ok"]);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("the database's disk is full"), "operators are told why: {log}");
}
