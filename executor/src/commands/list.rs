//! `ferry list`: the runs of this home.

use crate::cli::Output;
use crate::output::table;
use anyhow::Result;
use ferry_engine::Home;

pub(super) fn list(home: &Home, output: Output) -> Result<u8> {
    let list = home.store().workflows()?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        Output::Text => table::runs(&list),
    }
    Ok(0)
}
