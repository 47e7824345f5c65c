//! The model every layer shares, below both `manifest/` and `kinds/`: the YAML node tree
//! and its lenient deserialiser.

pub mod de;
pub mod object;
pub mod schema;
pub mod value;
pub mod yaml;
