//! Scenario files: TOML in, a validated [`Scenario`] out.
//!
//! Every field is documented in `scenarios/README.md`. Parsing is strict
//! (unknown fields are errors) and every error names the file and line.
//!
//! - [`model`]: the validated scenario, the types the simulator runs on;
//! - `raw`: the file as TOML gives it;
//! - `validate` and `fault`: from one to the other, section by section;
//! - [`duration`]: `"250ms"`, `"1.5s"`, read exactly.

pub mod duration;
mod fault;
pub mod model;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use duration::parse_duration;
pub(crate) use fault::named_nodes;
pub use fault::MAX_GROUPS;
pub use model::*;
pub use validate::parse;

/// Reads and validates a scenario file.
pub fn load(path: &str) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_string(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(path, &text)
}
