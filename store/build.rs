// `sqlx::migrate!` embeds the migration files at compile time but does not tell
// cargo to watch them: without this, a new migration file would not be picked up
// until something else in the crate changed.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
