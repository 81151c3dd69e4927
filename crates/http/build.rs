//! Rebuild when a template changes: askama compiles templates into the
//! crate, but cargo only watches the Rust sources it knows of.

fn main() {
    println!("cargo:rerun-if-changed=templates");
}
