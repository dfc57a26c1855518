//! A PostgreSQL server of a test's own (`initdb` into a temporary folder, on a free port),
//! which it may crash and restart, and whose connection slots no other test shares: the
//! server on 5432 is never touched.

use crate::helpers::temp_dir;
use crate::replicas::free_port;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The folder of PostgreSQL's server programs: `DOORMAN_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn postgres_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("DOORMAN_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("this test needs PostgreSQL's server programs (initdb, pg_ctl): install postgresql, or set DOORMAN_TEST_PG_BIN")
    })
}

/// A PostgreSQL cluster of the test's own, stopped and deleted when dropped.
pub(crate) struct OwnPostgres {
    bin: PathBuf,
    /// Whether the tests run as root, so PostgreSQL's programs run as `postgres`.
    as_root: bool,
    pub(crate) dir: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// `initdb`, then start. PostgreSQL refuses to run as root, so when the tests run as root
    /// (as in CI) its programs run as the `postgres` user, which owns the folder.
    pub(crate) fn start() -> Self {
        let bin = postgres_bin();
        let dir = temp_dir().join("postgres");
        std::fs::create_dir_all(&dir).unwrap();
        // The folder was made by the user the tests run as.
        let as_root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&dir).unwrap()) == 0;
        let pg = Self { bin, as_root, dir, port: free_port() };
        if pg.as_root {
            let chown = Command::new("chown").args(["-R", "postgres:"]).arg(&pg.dir).status().unwrap();
            assert!(chown.success(), "chown of {} to the postgres user", pg.dir.display());
            // Every folder above it must be open to that user.
            for parent in pg.dir.ancestors().skip(1) {
                let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(parent).unwrap().permissions());
                assert!(mode & 0o001 != 0, "{} must be searchable by the postgres user (TMPDIR?)", parent.display());
            }
        }
        pg.run("initdb", &["-D", &pg.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// One of PostgreSQL's programs, run as the user that owns the cluster.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(&self.dir).stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program, args).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections. `fsync=off`: a crash of the
    /// server process (not of the machine) loses nothing committed, and the test runs faster.
    pub(crate) fn start_server(&self) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", self.port, self.dir.display());
        let log = self.dir.join("server.log").display().to_string();
        self.run("pg_ctl", &["start", "-w", "-t", "60", "-D", &self.data(), "-l", &log, "-o", &options]);
    }

    /// `pg_ctl stop -m immediate`: the server quits at once, without a checkpoint, and runs
    /// crash recovery when it starts again.
    pub(crate) fn crash(&self) {
        self.run("pg_ctl", &["stop", "-w", "-m", "immediate", "-D", &self.data()]);
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database on this server; its URL.
    pub(crate) async fn create_database(&self) -> String {
        use sqlx::Connection;
        let name = format!("doorman_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres")).await.unwrap();
        sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.unwrap();
        admin.close().await.unwrap();
        self.url(&name)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let stop = self.command("pg_ctl", &["stop", "-m", "immediate", "-D", &self.data()]).output();
        // Kept after a failure, for its log.
        if stop.is_ok() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
