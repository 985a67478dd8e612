//! The catalogue, by area. IDs are `AD-<AREA>-<NNN>` and never reused; the
//! table in `docs/conformance.md` lists them (`tests/catalogue.rs` keeps it current).

use crate::case::Case;

mod core;
mod life;
mod objects;
mod robust;
mod streams;
mod tree;

/// Every case, in catalogue order.
pub fn all() -> Vec<Case> {
    let mut cases = core::cases();
    cases.extend(tree::cases());
    cases.extend(streams::cases());
    cases.extend(objects::cases());
    cases.extend(robust::cases());
    cases.extend(life::cases());
    cases.sort_by_key(|c| order(c.id));
    cases
}

/// Catalogue order: area, then number.
fn order(id: &str) -> (usize, String) {
    const AREAS: [&str; 16] = [
        "LIFE", "CAP", "FILE", "DIR", "KEY", "NF", "DEL", "LIST", "ISDIR", "STREAM", "SSTR", "OBJ", "CONF", "PROTO",
        "CONC", "RES",
    ];
    let area = id.split('-').nth(1).unwrap_or("");
    (AREAS.iter().position(|a| *a == area).unwrap_or(AREAS.len()), id.to_string())
}
