//! `.dockerignore` with Docker's semantics (moby/patternmatcher): patterns are relative
//! to the context root (a leading `/` changes nothing, and unlike `.gitignore` a pattern
//! without `/` matches at the root only), `*` `?` `[...]` match within one path segment,
//! `**` matches any number of segments, `!` re-includes, the last matching pattern wins,
//! and a pattern that matches a directory matches everything below it.

/// One line of a `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<String>,
    /// `!pattern`: re-include what earlier patterns excluded.
    exception: bool,
}

/// The parsed patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parse a `.dockerignore`: one pattern a line, `#` comments, blank lines skipped.
    pub fn parse(text: &str) -> Self {
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            if line.starts_with('#') {
                continue;
            }
            let mut line = line.trim();
            let exception = line.starts_with('!');
            if exception {
                line = line[1..].trim();
            }
            let segments = clean(line);
            if segments.is_empty() {
                continue;
            }
            patterns.push(Pattern {
                segments,
                exception,
            });
        }
        Self { patterns }
    }

    /// Whether any pattern re-includes (then an excluded directory must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded.
    pub fn is_ignored(&self, path: &str) -> bool {
        let names: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut ignored = false;
        for p in &self.patterns {
            // The path itself or one of its parent directories.
            let hit = (1..=names.len()).any(|n| match_path(&p.segments, &names[..n]));
            if hit {
                ignored = !p.exception;
            }
        }
        ignored
    }
}

/// Go's `filepath.Clean` on a pattern, split into segments (`.` and empty dropped, `..`
/// pops; a pattern that escapes the root keeps nothing of what it escaped).
fn clean(pattern: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in pattern.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

fn match_path(pats: &[String], names: &[&str]) -> bool {
    match pats.split_first() {
        None => names.is_empty(),
        Some((p, rest)) if p == "**" => {
            // A trailing `**` needs something below it; elsewhere it may match nothing.
            let min = usize::from(rest.is_empty());
            (min..=names.len()).any(|k| match_path(rest, &names[k..]))
        }
        Some((p, rest)) => match names.split_first() {
            Some((n, names)) => match_segment(p, n) && match_path(rest, names),
            None => false,
        },
    }
}

/// Go's `filepath.Match` for one segment: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`, `\` escapes.
/// `**` inside a segment acts as `*`. A malformed class matches nothing.
pub fn match_segment(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob(&p, &n)
}

fn glob(p: &[char], n: &[char]) -> bool {
    let Some((&c, rest)) = p.split_first() else {
        return n.is_empty();
    };
    match c {
        '*' => (0..=n.len()).any(|k| glob(rest, &n[k..])),
        '?' => !n.is_empty() && glob(rest, &n[1..]),
        '[' => {
            let Some((&first, tail)) = n.split_first() else {
                return false;
            };
            match class(rest, first) {
                Some((true, after)) => glob(after, tail),
                _ => false,
            }
        }
        '\\' => match rest.split_first() {
            Some((&lit, after)) => n.first() == Some(&lit) && glob(after, &n[1..]),
            None => false,
        },
        lit => n.first() == Some(&lit) && glob(rest, &n[1..]),
    }
}

/// Match `c` against the class that starts after `[`; `(matched, rest of the pattern)`.
fn class(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut p) = match p.first() {
        Some('^') => (true, &p[1..]),
        _ => (false, p),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&ch, rest) = p.split_first()?;
        if ch == ']' && !first {
            return Some((matched != negated, rest));
        }
        first = false;
        let (lo, rest) = escaped(ch, rest)?;
        let (hi, rest) = match rest {
            ['-', hi, tail @ ..] if *hi != ']' => escaped(*hi, tail)?,
            _ => (lo, rest),
        };
        if lo <= c && c <= hi {
            matched = true;
        }
        p = rest;
    }
}

fn escaped(ch: char, rest: &[char]) -> Option<(char, &[char])> {
    if ch == '\\' {
        let (&lit, rest) = rest.split_first()?;
        Some((lit, rest))
    } else {
        Some((ch, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        let cases = [
            ("*", "abc", true),
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a*c", "abd", false),
            ("?", "a", true),
            ("?", "", false),
            ("[abc]", "b", true),
            ("[abc]", "d", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]", "d", true),
            ("[^a-c]", "b", false),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("[", "[", false),
            ("*.md", "README.md", true),
            ("**", "x", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(match_segment(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn docker_semantics() {
        type Case<'a> = (&'a str, &'a str, bool);
        let cases: Vec<Case> = vec![
            // Relative to the root, not anywhere (unlike .gitignore).
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("**/*.md", "docs/README.md", true),
            ("**/*.md", "README.md", true),
            ("/node_modules", "node_modules", true),
            ("./node_modules", "node_modules/x/y.js", true),
            // A matched directory excludes its contents.
            ("target", "target/debug/app", true),
            ("target", "src/target", false),
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "temp", false),
            ("*/*/temp*", "a/b/temp.x", true),
            ("temp?", "tempa", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("build/**", "build/out", true),
            ("build/**", "build", false),
            // Comments and blank lines.
            ("# comment\n\n", "# comment", false),
            // Last match wins, and `!` re-includes.
            ("*.md\n!README.md", "README.md", false),
            ("*.md\n!README.md", "CHANGES.md", true),
            ("!README.md\n*.md", "README.md", true),
            ("docs\n!docs/keep.txt", "docs/keep.txt", false),
            ("docs\n!docs/keep.txt", "docs/drop.txt", true),
            ("**\n!src", "src/main.rs", false),
            ("**\n!src", "Cargo.toml", true),
            ("  spaced.txt  ", "spaced.txt", true),
            ("a/../b", "b", true),
        ];
        for (text, path, want) in cases {
            let ig = DockerIgnore::parse(text);
            assert_eq!(ig.is_ignored(path), want, "{text:?} vs {path}");
        }
        assert!(DockerIgnore::parse("a\n!b").has_exceptions());
        assert!(!DockerIgnore::parse("a\nb").has_exceptions());
        assert!(DockerIgnore::parse("# only\n\n").is_empty());
    }
}
