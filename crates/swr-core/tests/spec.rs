//! Tests of the `spec` module: tasks.md parsing, discovery, atomic edits, properties.
#![allow(clippy::unwrap_used)]

#[path = "spec/authored.rs"]
mod authored;
#[path = "spec/discover.rs"]
mod discover;
#[path = "spec/edit.rs"]
mod edit;
#[path = "spec/parse.rs"]
mod parse;
#[path = "spec/props.rs"]
mod props;
#[path = "spec/real.rs"]
mod real;

use std::path::PathBuf;

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spec")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}
