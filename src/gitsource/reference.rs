//! Which commit of the remote the source follows: a branch's head, a tag, or the highest
//! tag in a semantic-version range (as Flux's GitRepository `spec.ref`). Pure: the remote's
//! refs come in as `git ls-remote` lists them.

use std::fmt;

/// What `--ref`, `--tag` or `--semver` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A branch (`main`, or `refs/heads/main`).
    Branch(String),
    /// One tag (`v1.2.3`).
    Tag(String),
    /// The highest tag whose name (a leading `v` allowed) is a version in this range.
    Semver(semver::VersionReq),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Branch(b) => write!(f, "branch {b}"),
            Self::Tag(t) => write!(f, "tag {t}"),
            Self::Semver(r) => write!(f, "semver {r}"),
        }
    }
}

/// A ref the remote has, as `git ls-remote` prints it: `SHA\tNAME`, an annotated tag
/// followed by `SHA\tNAME^{}` (the commit it points to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    /// The commit (an annotated tag's target, not the tag object).
    pub commit: String,
}

/// The refs in `git ls-remote` output, annotated tags peeled to their commits.
pub fn parse_ls_remote(text: &str) -> Vec<RemoteRef> {
    let mut refs: Vec<RemoteRef> = Vec::new();
    for line in text.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        let (sha, name) = (sha.trim(), name.trim());
        if !is_sha(sha) {
            continue;
        }
        if let Some(tag) = name.strip_suffix("^{}") {
            match refs.iter_mut().find(|r| r.name == tag) {
                Some(r) => r.commit = sha.to_string(),
                None => refs.push(RemoteRef {
                    name: tag.to_string(),
                    commit: sha.to_string(),
                }),
            }
        } else if !refs.iter().any(|r| r.name == name) {
            refs.push(RemoteRef {
                name: name.to_string(),
                commit: sha.to_string(),
            });
        }
    }
    refs
}

/// A full object name: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn is_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Reference {
    /// Check a branch or tag name as git does (`git check-ref-format`, the common cases),
    /// so that a typo is refused at start-up, not at every fetch.
    pub fn branch(name: &str) -> Result<Self, String> {
        let name = name.strip_prefix("refs/heads/").unwrap_or(name);
        check_ref_name(name, "branch")?;
        Ok(Self::Branch(name.to_string()))
    }

    pub fn tag(name: &str) -> Result<Self, String> {
        let name = name.strip_prefix("refs/tags/").unwrap_or(name);
        check_ref_name(name, "tag")?;
        Ok(Self::Tag(name.to_string()))
    }

    pub fn semver(range: &str) -> Result<Self, String> {
        semver::VersionReq::parse(range)
            .map(Self::Semver)
            .map_err(|e| format!("`{range}` is not a semver range (e.g. '>=1.0.0, <2.0.0'): {e}"))
    }

    /// The ref names `git ls-remote` is asked for (all tags for a range).
    pub fn patterns(&self) -> Vec<String> {
        match self {
            Self::Branch(b) => vec![format!("refs/heads/{b}")],
            Self::Tag(t) => vec![format!("refs/tags/{t}")],
            Self::Semver(_) => vec!["refs/tags/*".to_string()],
        }
    }

    /// Pick the ref to follow among what the remote has: the full ref name and its commit.
    pub fn select(&self, refs: &[RemoteRef]) -> Result<RemoteRef, String> {
        match self {
            Self::Branch(_) | Self::Tag(_) => {
                let want = &self.patterns()[0];
                refs.iter()
                    .find(|r| &r.name == want)
                    .cloned()
                    .ok_or_else(|| format!("the remote has no {self}"))
            }
            Self::Semver(req) => refs
                .iter()
                .filter_map(|r| {
                    let tag = r.name.strip_prefix("refs/tags/")?;
                    let v = semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()?;
                    req.matches(&v).then_some((v, r))
                })
                // Equal versions (`v1.0.0` and `1.0.0`): the later name, so the pick is stable.
                .max_by(|(a, ra), (b, rb)| a.cmp(b).then_with(|| ra.name.cmp(&rb.name)))
                .map(|(_, r)| r.clone())
                .ok_or_else(|| format!("no tag of the remote is a version in {self}")),
        }
    }
}

/// The short name of a full ref (`refs/heads/main` → `main`, `refs/tags/v1` → `v1`).
pub fn short_name(full: &str) -> &str {
    full.strip_prefix("refs/heads/")
        .or_else(|| full.strip_prefix("refs/tags/"))
        .unwrap_or(full)
}

fn check_ref_name(name: &str, what: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("@{")
        || name.contains("/.")
        || name
            .chars()
            .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c));
    if bad {
        Err(format!("`{name}` is not a valid git {what} name"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";
    const T: &str = "4444444444444444444444444444444444444444";

    #[test]
    fn ls_remote_output_is_read_with_annotated_tags_peeled() {
        let text = format!(
            "{A}\tHEAD\n{A}\trefs/heads/main\n{T}\trefs/tags/v1.0.0\n{B}\trefs/tags/v1.0.0^{{}}\n\
             {C}\trefs/tags/light\nnot a line\nzz\trefs/heads/bad\n"
        );
        let refs = parse_ls_remote(&text);
        let find = |n: &str| refs.iter().find(|r| r.name == n).map(|r| r.commit.as_str());
        assert_eq!(find("refs/heads/main"), Some(A));
        assert_eq!(find("refs/tags/v1.0.0"), Some(B), "peeled to the commit");
        assert_eq!(find("refs/tags/light"), Some(C));
        assert_eq!(find("refs/heads/bad"), None);
        assert_eq!(refs.len(), 4);
    }

    #[test]
    fn the_ref_to_follow_is_picked_from_the_remotes_refs() {
        let refs = |names: &[(&str, &str)]| {
            names
                .iter()
                .map(|(n, c)| RemoteRef {
                    name: n.to_string(),
                    commit: c.to_string(),
                })
                .collect::<Vec<_>>()
        };
        let remote = refs(&[
            ("refs/heads/main", A),
            ("refs/tags/v1.2.0", B),
            ("refs/tags/v1.10.0", C),
            ("refs/tags/2.0.0-rc.1", T),
            ("refs/tags/release", A),
        ]);
        // (reference, expected pick or the error's start)
        let cases: Vec<(Reference, Result<&str, &str>)> = vec![
            (Reference::branch("main").unwrap(), Ok(A)),
            (Reference::branch("refs/heads/main").unwrap(), Ok(A)),
            (
                Reference::branch("dev").unwrap(),
                Err("the remote has no branch dev"),
            ),
            (Reference::tag("v1.2.0").unwrap(), Ok(B)),
            (
                Reference::tag("v9").unwrap(),
                Err("the remote has no tag v9"),
            ),
            // 1.10 > 1.2 as versions (not as text); prereleases only when asked for.
            (Reference::semver(">=1.0").unwrap(), Ok(C)),
            (Reference::semver("~1.2").unwrap(), Ok(B)),
            (Reference::semver(">=2.0.0-rc.0").unwrap(), Ok(T)),
            (
                Reference::semver(">=3").unwrap(),
                Err("no tag of the remote"),
            ),
        ];
        for (reference, want) in cases {
            let got = reference.select(&remote);
            match want {
                Ok(sha) => assert_eq!(got.map(|r| r.commit), Ok(sha.to_string()), "{reference}"),
                Err(msg) => assert!(
                    got.as_ref().is_err_and(|e| e.starts_with(msg)),
                    "{reference}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn bad_names_and_ranges_are_refused() {
        for name in [
            "", "-x", "a..b", "a b", "a~1", "x.lock", "a/", "a//b", "HEAD@{1}", ".hidden",
        ] {
            assert!(Reference::branch(name).is_err(), "branch {name:?}");
            assert!(Reference::tag(name).is_err(), "tag {name:?}");
        }
        for name in ["main", "feature/x", "release-1.2", "v1.2.3"] {
            assert!(Reference::branch(name).is_ok(), "{name}");
        }
        assert!(Reference::semver("not a range").is_err());
        assert_eq!(short_name("refs/heads/main"), "main");
        assert_eq!(short_name("refs/tags/v1"), "v1");
    }
}
