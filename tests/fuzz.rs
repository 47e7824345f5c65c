//! Mutated manifests, offline: the real manifests of `manifests/` and `manifests-sigv4/`
//! bent in the ways people and tools break YAML (byte flips, truncation, lost or doubled
//! lines, indentation, tabs, invalid UTF-8, alias bombs, deep nesting, wrong types, huge
//! numbers, unknown kinds and fields, broken references). Every input must load without a
//! panic or a hang, every problem must name the file it is in, a mutation that makes a
//! manifest invalid by construction must be refused, and whatever is accepted must load
//! again, from its normalised form, to the same objects. Deterministic: a fixed seed.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use agentcore_controller::kinds::Registry;
use agentcore_controller::manifest::load::{Loaded, load, load_texts};

const INPUTS: usize = 2400;
const SEED: u64 = 0x5eed_2026_1203;
/// Far beyond any input's time: only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// splitmix64: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The manifests of one directory: (path, contents).
type Set = Vec<(PathBuf, Vec<u8>)>;

fn seed_sets() -> Vec<Set> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["manifests", "manifests-sigv4"]
        .iter()
        .map(|dir| {
            let mut files: Set = std::fs::read_dir(root.join(dir))
                .expect("manifest directory")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .map(|p| {
                    let bytes = std::fs::read(&p).expect("read manifest");
                    (p, bytes)
                })
                .collect();
            files.sort();
            files
        })
        .collect()
}

/// What a mutation did, and whether it makes the manifest invalid by construction.
struct Mutation {
    name: &'static str,
    invalid: bool,
}

fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Indices of lines for which `pred` holds (on the line's text).
fn lines_where(ls: &[Vec<u8>], pred: impl Fn(&str) -> bool) -> Vec<usize> {
    ls.iter()
        .enumerate()
        .filter(|(_, l)| pred(&String::from_utf8_lossy(l)))
        .map(|(i, _)| i)
        .collect()
}

fn alias_bomb() -> String {
    let mut text =
        "apiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: bomb\nx0: &x0 {k1: x, k2: x, k3: x, k4: x, k5: x}\n"
            .to_string();
    for i in 1..7 {
        let p = i - 1;
        text.push_str(&format!(
            "x{i}: &x{i} {{k1: *x{p}, k2: *x{p}, k3: *x{p}, k4: *x{p}, k5: *x{p}}}\n"
        ));
    }
    text.push_str("spec: *x6\n");
    text
}

/// Apply one random mutation to `text`.
fn mutate(rng: &mut Rng, text: &mut Vec<u8>) -> Mutation {
    let mut ls = lines(text);
    let pick = |rng: &mut Rng, v: &[usize]| (!v.is_empty()).then(|| v[rng.below(v.len())]);
    let m = |name, invalid| Mutation { name, invalid };
    let result = match rng.below(17) {
        0 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(text.len());
                text[i] ^= 1 << rng.below(8);
            }
            return m("byte flip", false);
        }
        1 => {
            let at = rng.below(text.len());
            text.truncate(at);
            return m("truncation", false);
        }
        2 => {
            let i = rng.below(ls.len());
            ls.remove(i);
            m("deleted line", false)
        }
        3 => {
            let i = rng.below(ls.len());
            let l = ls[i].clone();
            ls.insert(i, l);
            m("duplicated line", false)
        }
        4 => {
            let indented = lines_where(&ls, |l| l.starts_with("  "));
            match pick(rng, &indented) {
                Some(i) if rng.below(2) == 0 => {
                    ls[i].drain(..2);
                }
                Some(i) => {
                    ls[i].splice(0..0, *b"  ");
                }
                None => {}
            }
            m("swapped indentation", false)
        }
        5 => {
            let indented = lines_where(&ls, |l| l.starts_with("  "));
            if let Some(i) = pick(rng, &indented) {
                ls[i].splice(0..2, [b'\t']);
            }
            m("tab", false)
        }
        6 => {
            let at = rng.below(text.len() + 1);
            let bad: &[u8] =
                [&[0xffu8][..], &[0xc3, 0x28], &[0xe9], &[0xed, 0xa0, 0x80]][rng.below(4)];
            text.splice(at..at, bad.iter().copied());
            return m("invalid UTF-8", true);
        }
        7 => {
            ls.push(b"---\n".to_vec());
            ls.push(alias_bomb().into_bytes());
            m("alias bomb", true)
        }
        8 => {
            let depth = 100 + rng.below(5000);
            let nest = if rng.below(2) == 0 {
                format!("{}{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                (0..depth.min(400))
                    .map(|d| format!("{}k{d}:\n", "  ".repeat(d)))
                    .collect::<String>()
            };
            ls.push(
                format!(
                    "---\napiVersion: agentcore.dev/v1alpha1\nkind: Parameter\nmetadata:\n  name: deep\nspec:\n  name: /deep\n  value: {{ value: x }}\n  nested: {nest}\n"
                )
                .into_bytes(),
            );
            m("deep nesting", true)
        }
        9 => {
            let kinds = lines_where(&ls, |l| l.starts_with("kind: "));
            let Some(i) = pick(rng, &kinds) else {
                return m("none", false);
            };
            let kind = String::from_utf8_lossy(&ls[i]).trim_end().to_string();
            ls[i] = format!("kind: [{}]\n", &kind[6..]).into_bytes();
            m("wrong type (kind)", true)
        }
        10 => {
            let names = lines_where(&ls, |l| l.starts_with("  name: "));
            let Some(i) = pick(rng, &names) else {
                return m("none", false);
            };
            ls[i] = b"  name: { not: a name }\n".to_vec();
            m("wrong type (name)", true)
        }
        11 => {
            let scalars = lines_where(&ls, |l| {
                l.starts_with("    ") && l.trim_end().ends_with(|c: char| c.is_ascii_digit())
            });
            let Some(i) = pick(rng, &scalars) else {
                return m("none", false);
            };
            let line = String::from_utf8_lossy(&ls[i]).to_string();
            let Some((key, _)) = line.split_once(": ") else {
                return m("none", false);
            };
            let huge = [
                "99999999999999999999999999",
                "1e999",
                "-9223372036854775809",
            ][rng.below(3)];
            ls[i] = format!("{key}: {huge}\n").into_bytes();
            m("huge number", false)
        }
        12 => {
            let kinds = lines_where(&ls, |l| l.starts_with("kind: "));
            let Some(i) = pick(rng, &kinds) else {
                return m("none", false);
            };
            ls[i] = b"kind: Widget\n".to_vec();
            m("unknown kind", true)
        }
        13 => {
            let specs = lines_where(&ls, |l| l.starts_with("spec:") && l.trim_end() == "spec:");
            let Some(i) = pick(rng, &specs) else {
                return m("none", false);
            };
            ls.insert(i + 1, b"  fuzzUnknownField: 1\n".to_vec());
            m("unknown field", true)
        }
        14 => {
            let tops = lines_where(&ls, |l| l.starts_with("apiVersion:"));
            let Some(i) = pick(rng, &tops) else {
                return m("none", false);
            };
            ls.insert(i + 1, b"status: {}\n".to_vec());
            m("unknown top-level field", true)
        }
        15 => {
            let refs = lines_where(&ls, |l| {
                let t = l.trim_start();
                t.split_once(':').is_some_and(|(k, v)| {
                    k.ends_with("Ref") && !v.trim().is_empty() && !v.contains('#')
                }) || (t.contains("from: ") && t.contains('/'))
            });
            let Some(i) = pick(rng, &refs) else {
                return m("none", false);
            };
            let line = String::from_utf8_lossy(&ls[i]).to_string();
            let broken = if let Some((before, after)) = line.split_once("from: ") {
                let (target, rest) =
                    after.split_at(after.find([',', ' ', '}', '\n']).unwrap_or(after.len()));
                let kind = target.split('/').next().unwrap_or("Parameter");
                format!("{before}from: {kind}/missing-target{rest}")
            } else {
                let (key, _) = line.split_once(':').unwrap_or((&line, ""));
                format!("{key}: missing-target\n")
            };
            ls[i] = broken.into_bytes();
            m("broken reference", true)
        }
        _ => {
            let outputs = lines_where(&ls, |l| l.contains("output: "));
            let Some(i) = pick(rng, &outputs) else {
                return m("none", false);
            };
            let line = String::from_utf8_lossy(&ls[i]).to_string();
            let Some(at) = line.find("output: ") else {
                return m("none", false);
            };
            let rest = &line[at + 8..];
            let end = rest.find([',', ' ', '}', '\n']).unwrap_or(rest.len());
            ls[i] = format!("{}output: nonsense{}", &line[..at], &rest[end..]).into_bytes();
            m("unknown output", true)
        }
    };
    *text = ls.concat();
    result
}

/// Load a set of files: as texts when they are UTF-8, else from disk (the reading path).
fn load_set(set: &Set) -> (Loaded, Vec<PathBuf>) {
    let texts: Option<Vec<(PathBuf, String)>> = set
        .iter()
        .map(|(p, b)| String::from_utf8(b.clone()).ok().map(|t| (p.clone(), t)))
        .collect();
    if let Some(texts) = texts {
        let paths = texts.iter().map(|(p, _)| p.clone()).collect();
        return (load_texts(&texts, &Registry::offline()), paths);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    for (p, b) in set {
        let path = dir.path().join(p.file_name().expect("file name"));
        std::fs::write(&path, b).expect("write");
        paths.push(path);
    }
    let loaded = load(&[dir.path().to_path_buf()], &Registry::offline()).expect("loads");
    (loaded, paths)
}

/// The accepted objects written back as documents (JSON is YAML), one text per file.
fn normalised(loaded: &Loaded) -> Vec<(PathBuf, String)> {
    loaded
        .files
        .keys()
        .map(|file| {
            let docs: Vec<String> = loaded
                .objects
                .iter()
                .filter(|o| &o.source.file == file)
                .map(|o| {
                    serde_json::json!({
                        "apiVersion": "agentcore.dev/v1alpha1",
                        "kind": o.key.kind,
                        "metadata": {
                            "name": o.meta.name,
                            "labels": o.meta.labels,
                            "annotations": o.meta.annotations,
                        },
                        "spec": o.spec,
                    })
                    .to_string()
                })
                .collect();
            (file.clone(), docs.join("\n---\n"))
        })
        .collect()
}

#[derive(Default, Debug)]
struct Counts {
    inputs: usize,
    rejected: usize,
    accepted: usize,
    panics: usize,
    timeouts: usize,
    invalid_accepted: usize,
    unnamed_errors: usize,
    round_trip_failures: usize,
}

#[test]
fn fuzz_gate_mutated_manifests() {
    let seeds = seed_sets();
    let mut rng = Rng(SEED);
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut by_mutation = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for n in 0..INPUTS {
        let mut set = seeds[rng.below(seeds.len())].clone();
        let f = rng.below(set.len());
        let mut applied = Vec::new();
        for _ in 0..1 + usize::from(rng.below(4) == 0) {
            applied.push(mutate(&mut rng, &mut set[f].1));
        }
        // Only the last mutation is known to hold: an earlier one may be cut away.
        let invalid = applied.last().is_some_and(|m| m.invalid);
        let what: Vec<&str> = applied.iter().map(|m| m.name).collect();
        counts.inputs += 1;

        let (tx, rx) = mpsc::channel();
        let input = set.clone();
        if std::env::var_os("FUZZ_TRACE").is_some() {
            eprintln!("#{n} {what:?}");
        }
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| {
                let (loaded, paths) = load_set(&input);
                let again = loaded
                    .problems
                    .is_empty()
                    .then(|| load_texts(&normalised(&loaded), &Registry::offline()));
                (loaded, paths, again)
            });
            let _ = tx.send(result);
        });
        let (loaded, paths, again) = match rx.recv_timeout(HANG) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => {
                counts.panics += 1;
                failures.push(format!("#{n} {what:?}: panic"));
                continue;
            }
            Err(_) => {
                counts.timeouts += 1;
                failures.push(format!("#{n} {what:?}: no answer in {HANG:?}"));
                continue;
            }
        };
        let entry = by_mutation.entry(what[0]).or_default();
        entry.0 += 1;
        for p in &loaded.problems {
            if !paths.contains(&p.source.file)
                || !p
                    .to_string()
                    .starts_with(&p.source.file.display().to_string())
            {
                counts.unnamed_errors += 1;
                failures.push(format!("#{n} {what:?}: problem without its file: {p}"));
            }
        }
        if loaded.problems.is_empty() {
            counts.accepted += 1;
            if invalid {
                counts.invalid_accepted += 1;
                failures.push(format!("#{n} {what:?}: invalid manifest accepted"));
            }
            let again = again.expect("re-validated");
            let same = again.problems.is_empty()
                && again.objects.len() == loaded.objects.len()
                && again
                    .objects
                    .iter()
                    .zip(&loaded.objects)
                    .all(|(a, b)| a.key == b.key && a.spec == b.spec && a.hash == b.hash);
            if !same {
                counts.round_trip_failures += 1;
                failures.push(format!(
                    "#{n} {what:?}: accepted but does not round-trip: {:?}",
                    again.problems.first().map(ToString::to_string)
                ));
            }
        } else {
            counts.rejected += 1;
            entry.1 += 1;
        }
    }
    println!(
        "fuzz: {} inputs, {} rejected, {} accepted, {} panics, {} timeouts, {} invalid accepted, {} errors without their file, {} round-trip failures",
        counts.inputs,
        counts.rejected,
        counts.accepted,
        counts.panics,
        counts.timeouts,
        counts.invalid_accepted,
        counts.unnamed_errors,
        counts.round_trip_failures
    );
    for (name, (n, rejected)) in &by_mutation {
        println!("fuzz:   first mutation {name}: {n} inputs, {rejected} rejected");
    }
    assert!(counts.inputs >= 2000);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
