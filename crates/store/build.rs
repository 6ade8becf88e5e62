//! `sqlx::migrate!` embeds the migration files at compile time; cargo does not know
//! they are inputs, so a new migration would not rebuild the crate without this.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
