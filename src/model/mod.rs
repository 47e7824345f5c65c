//! The model every layer shares, below both `manifest/` and `kinds/`: object identity and
//! metadata, references and value sources, the schema face of a kind, the YAML node tree
//! and its lenient deserialiser. It imports neither layer above it; `manifest/` and
//! `kinds/` import it and not each other (the test below keeps it so).

pub mod de;
pub mod object;
pub mod permissions;
pub mod published;
pub mod schema;
pub mod value;
pub mod yaml;

#[cfg(test)]
mod layering_tests {
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, recursively.
    fn sources(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(dir).expect("a source folder");
        for entry in entries {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                out.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        out
    }

    /// The code of a file without its unit-test module: tests may load real manifests
    /// with the real kinds.
    fn production_code(text: &str) -> &str {
        ["#[cfg(test)]\nmod ", "#[cfg(test)]\npub(crate) mod "]
            .iter()
            .filter_map(|start| text.find(start))
            .min()
            .map_or(text, |at| &text[..at])
    }

    #[test]
    fn no_layer_imports_one_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let above_model = [
            "crate::kinds",
            "crate::manifest",
            "crate::engine",
            "crate::aws",
        ];
        let above_kinds = [
            "crate::manifest",
            "crate::engine",
            "crate::commands",
            "crate::daemon",
        ];
        let above_manifest = [
            "crate::kinds",
            "crate::engine",
            "crate::commands",
            "crate::daemon",
        ];
        let rules: [(&str, &[&str]); 3] = [
            ("model", &above_model),
            ("kinds", &above_kinds),
            ("manifest", &above_manifest),
        ];
        let mut found = Vec::new();
        for (layer, forbidden) in rules {
            for file in sources(&src.join(layer)) {
                if file.file_name().is_some_and(|n| n == "tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&file).expect("a source file");
                for (n, line) in production_code(&text).lines().enumerate() {
                    for path in forbidden {
                        if line.contains(path) {
                            found.push(format!("{}:{}: {path}", file.display(), n + 1));
                        }
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "imports from a layer above:\n{}",
            found.join("\n")
        );
    }
}
