// `sqlx::migrate!` embeds the migration files at compile time; this makes cargo rebuild
// when one is added or changed (see src/store/migrations.rs).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
