//! The controller's own image and deploy files, checked offline (nothing is built, pulled
//! or deployed here): the Dockerfile's structure and build context, the Kubernetes
//! manifests against Kubernetes' JSON schemas and the ECS files against botocore's model of
//! the ECS API (both by scripts/validate-deploy.py, in .venv), and every flag of the
//! controller's command lines in them against `agentcore-controller run --help`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use agentcore_controller::oci::dockerignore::DockerIgnore;

const BIN: &str = env!("CARGO_BIN_EXE_agentcore-controller");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// scripts/validate-deploy.py, run by the venv's Python (installed or upgraded once per
/// test binary: kubernetes-validate is pinned there, botocore comes with moto).
fn validate_deploy(args: &[&str]) -> Output {
    static VENV: OnceLock<()> = OnceLock::new();
    VENV.get_or_init(testkit::ensure_emulator);
    Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/validate-deploy.py"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run scripts/validate-deploy.py")
}

#[test]
fn the_kubernetes_manifests_match_the_kubernetes_schemas() {
    let out = validate_deploy(&["kubernetes", "deploy/kubernetes"]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "deploy/kubernetes: {}", show(&out));
}

#[test]
fn the_ecs_files_match_the_ecs_api_model() {
    let out = validate_deploy(&["ecs", "deploy/ecs"]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "deploy/ecs: {}", show(&out));
}

/// One Dockerfile instruction: its keyword (upper case), its arguments with continuation
/// lines joined, and the line it starts on.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
    line: usize,
}

/// Enough of Dockerfile syntax for these files: `#` comment lines (also inside a continued
/// instruction, as Docker allows), `\` at the end of a line continuing the instruction. No
/// heredocs, no other escape character.
fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') || (pending.is_none() && line.is_empty()) {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        let (body, continued) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        joined.push_str(body.trim());
        joined.push(' ');
        if continued {
            pending = Some((start, joined));
            continue;
        }
        let joined = joined.trim();
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
            line: start,
        });
    }
    assert!(
        pending.is_none(),
        "the Dockerfile ends inside an instruction"
    );
    out
}

/// The instructions of each stage (each starts with its FROM).
fn stages(instructions: &[Instruction]) -> Vec<&[Instruction]> {
    let starts: Vec<usize> = (0..instructions.len())
        .filter(|&i| instructions[i].keyword == "FROM")
        .collect();
    let first = starts.first().copied().expect("a Dockerfile has a FROM");
    assert!(
        instructions[..first].iter().all(|i| i.keyword == "ARG"),
        "only ARG comes before the first FROM"
    );
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| &instructions[s..starts.get(n + 1).copied().unwrap_or(instructions.len())])
        .collect()
}

/// A JSON array of strings (exec form: `["a", "b"]`), or None for anything else.
fn exec_form(args: &str) -> Option<Vec<String>> {
    let inner = args.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut chars = inner.trim().chars().peekable();
    while chars.peek().is_some() {
        if chars.next()? != '"' {
            return None;
        }
        let mut s = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => s.push(chars.next()?),
                c => s.push(c),
            }
        }
        out.push(s);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => return None,
        }
    }
    Some(out)
}

/// The user of a USER instruction (`user[:group]`), when it is root.
fn is_root_user(args: &str) -> bool {
    let user = args.split(':').next().unwrap_or("").trim();
    user == "root" || user.parse::<u32>() == Ok(0)
}

#[test]
fn the_dockerfile_runs_the_binary_as_a_numeric_non_root_user_without_a_healthcheck() {
    let all = parse_dockerfile(&read("Dockerfile"));
    if let Some(h) = all.iter().find(|i| i.keyword == "HEALTHCHECK") {
        panic!(
            "Dockerfile:{}: HEALTHCHECK (the orchestrator probes /healthz and /readyz)",
            h.line
        );
    }
    let stages = stages(&all);
    assert!(stages.len() >= 2, "Dockerfile: not multi-stage");
    let last = *stages.last().expect("a stage");
    let find = |keyword: &str| last.iter().rev().find(|i| i.keyword == keyword);

    let user =
        find("USER").expect("Dockerfile: the final stage has no USER (it would run as root)");
    assert!(
        !is_root_user(&user.args),
        "Dockerfile:{}: USER {} is root",
        user.line,
        user.args
    );
    // Kubernetes' runAsNonRoot can verify only a numeric user.
    let uid = user.args.split(':').next().unwrap_or("");
    assert!(
        uid.parse::<u32>().is_ok(),
        "Dockerfile:{}: USER {} is not numeric",
        user.line,
        user.args
    );

    // ssh and ssh-keygen (run --git) refuse a uid without an /etc/passwd entry: a base
    // image other than distroless (which has one for 65532) must add it.
    let base = &last[0].args;
    if !base.contains("distroless") {
        let entry = format!(":x:{uid}:");
        assert!(
            last.iter().any(|i| i.keyword == "RUN"
                && i.args.contains(&entry)
                && i.args.contains("/etc/passwd")),
            "Dockerfile: USER {} has no /etc/passwd entry in {base}",
            user.args
        );
    }

    let entrypoint = find("ENTRYPOINT").expect("Dockerfile: the final stage has no ENTRYPOINT");
    let entrypoint = exec_form(&entrypoint.args).unwrap_or_else(|| {
        panic!(
            "Dockerfile:{}: ENTRYPOINT is not in exec form",
            entrypoint.line
        )
    });
    assert_eq!(
        entrypoint,
        ["/usr/local/bin/agentcore-controller"],
        "Dockerfile: ENTRYPOINT"
    );
    let copied = last
        .iter()
        .any(|i| i.keyword == "COPY" && i.args.ends_with(" /usr/local/bin/agentcore-controller"));
    assert!(
        copied,
        "Dockerfile: the final stage does not COPY the binary to its ENTRYPOINT"
    );

    let expose = find("EXPOSE").expect("Dockerfile: no EXPOSE in the final stage");
    assert!(
        expose
            .args
            .split_whitespace()
            .any(|p| p == "8181" || p == "8181/tcp"),
        "Dockerfile:{}: EXPOSE {} lacks 8181",
        expose.line,
        expose.args
    );
    // The CMD's flags are checked against `run --help` below.
    let cmd = find("CMD").expect("Dockerfile: no CMD in the final stage");
    assert!(
        exec_form(&cmd.args).is_some(),
        "Dockerfile:{}: CMD is not in exec form",
        cmd.line
    );
}

#[test]
fn the_manifests_image_for_ecs_keeps_the_controller_image_user() {
    let all = parse_dockerfile(&read("deploy/ecs/Dockerfile.manifests"));
    for i in &all {
        let problem = match i.keyword.as_str() {
            "HEALTHCHECK" => {
                "HEALTHCHECK (no curl in the image to run it; the orchestrator probes)"
            }
            "USER" if is_root_user(&i.args) => "USER root",
            // The controller image's ENTRYPOINT is the binary; the task definition's command
            // replaces its CMD.
            "ENTRYPOINT" => "ENTRYPOINT replaces the controller image's",
            _ => continue,
        };
        panic!("deploy/ecs/Dockerfile.manifests:{}: {problem}", i.line);
    }
    let from = stages(&all)[0][0].args.as_str();
    assert_eq!(
        from, "${CONTROLLER_IMAGE}",
        "deploy/ecs/Dockerfile.manifests: FROM"
    );
}

/// Copy what `.dockerignore` lets into the build context, as Docker would send it. An
/// ignored directory is not walked: this `.dockerignore` re-includes top-level entries only.
fn copy_context(from: &Path, rel: &str, ignore: &DockerIgnore, to: &Path) {
    let dir = from.join(rel);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if ignore.is_ignored(&path) {
            continue;
        }
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            std::fs::create_dir_all(to.join(&path)).expect("mkdir");
            copy_context(from, &path, ignore, to);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&path)).expect("copy into the context");
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("list") {
            let entry = entry.expect("directory entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::copy(from, to).expect("copy");
    }
}

/// The build stage's COPY lines, replayed from the context that `.dockerignore` leaves,
/// give cargo a workspace that it can load and resolve with `--locked`: `cargo fetch`,
/// offline, which also checks that the targets Cargo.toml names exist (benches/), and
/// compiles nothing. A source missing from the context, or a part of the workspace left
/// out (testkit/, mcp-server/, benches/), fails here rather than in `docker build`.
#[test]
fn the_dockerfile_build_stage_copies_what_cargo_needs() {
    let ignore = DockerIgnore::parse(&read(".dockerignore"));
    for big in ["target", ".venv", ".git", "mcp-server/target"] {
        assert!(
            ignore.is_ignored(big),
            ".dockerignore lets {big} into the build context"
        );
    }
    let context = tempfile::tempdir().expect("tempdir");
    copy_context(root(), "", &ignore, context.path());

    let all = parse_dockerfile(&read("Dockerfile"));
    let build = stages(&all)[0];
    let workdir = build
        .iter()
        .find(|i| i.keyword == "WORKDIR")
        .map(|i| PathBuf::from(&i.args))
        .expect("Dockerfile: the build stage has no WORKDIR");
    let image = tempfile::tempdir().expect("tempdir");
    let work = image
        .path()
        .join(workdir.strip_prefix("/").unwrap_or(&workdir));
    let mut copies = 0;
    for copy in build.iter().filter(|i| i.keyword == "COPY") {
        let words: Vec<&str> = copy.args.split_whitespace().collect();
        assert!(
            !words.iter().any(|w| w.starts_with("--from")),
            "Dockerfile:{}: COPY --from in the build stage",
            copy.line
        );
        let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
        let (dest, sources) = words.split_last().expect("COPY without arguments");
        let dest = work.join(dest);
        for source in sources {
            let from = context.path().join(source);
            assert!(
                from.exists(),
                "Dockerfile:{}: COPY {source}: not in the build context (.dockerignore?)",
                copy.line
            );
            if from.is_dir() {
                copy_tree(&from, &dest);
            } else if sources.len() > 1 || copy.args.ends_with('/') {
                copy_tree(&from, &dest.join(from.file_name().expect("a file name")));
            } else {
                copy_tree(&from, &dest);
            }
            copies += 1;
        }
    }
    assert!(copies > 0, "Dockerfile: the build stage copies nothing");

    for file in ["src/main.rs", "src/lib.rs"] {
        assert!(
            work.join(file).is_file(),
            "Dockerfile: the build stage does not copy {file}"
        );
    }

    // The packages this machine's build downloaded are those of its own platform.
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let target = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO"))
        .args(["fetch", "--locked", "--offline", "--target", &host])
        .current_dir(&work)
        .env("CARGO_TARGET_DIR", target.path())
        .output()
        .expect("run cargo fetch");
    assert!(
        out.status.success(),
        "cargo cannot load the workspace that the Dockerfile copies (offline: a crate that \
         Cargo.lock names but no build here has downloaded yet fails too): {}",
        show(&out)
    );
}

/// The controller's command line (after the binary) in every place that runs it.
fn command_lines() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();

    let all = parse_dockerfile(&read("Dockerfile"));
    let cmd = all
        .iter()
        .rev()
        .find(|i| i.keyword == "CMD")
        .and_then(|i| exec_form(&i.args))
        .expect("Dockerfile: a CMD in exec form");
    out.push(("Dockerfile CMD".to_string(), cmd));

    let unit = read("deploy/agentcore-controller.service");
    let exec: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .collect();
    assert_eq!(
        exec.len(),
        1,
        "deploy/agentcore-controller.service: one ExecStart"
    );
    let argv: Vec<String> = exec[0]
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    out.push(("deploy/agentcore-controller.service".to_string(), argv));

    // The Kubernetes Deployment's and the ECS task's controller container.
    let args = validate_deploy(&["controller-args", "deploy/kubernetes", "deploy/ecs"]);
    assert!(args.status.success(), "controller-args: {}", show(&args));
    let start = out.len();
    for line in String::from_utf8_lossy(&args.stdout).lines() {
        let (file, arg) = line.split_once('\t').expect("FILE<TAB>ARG");
        match out[start..].iter_mut().find(|(f, _)| f == file) {
            Some((_, argv)) => argv.push(arg.to_string()),
            None => out.push((file.to_string(), vec![arg.to_string()])),
        }
    }
    assert_eq!(
        out.len(),
        4,
        "command lines from the Dockerfile, the unit, Kubernetes and ECS: {out:?}"
    );
    out
}

/// The long options of an argv (`--name` of `--name=value` too).
fn long_flags(argv: &[String]) -> Vec<&str> {
    argv.iter()
        .filter(|a| a.starts_with("--") && a.len() > 2)
        .map(|a| a.split('=').next().unwrap_or(a))
        .collect()
}

/// `flag` appears in `help` as a whole option (`--lease` is not `--lease-duration`).
fn mentions(help: &str, flag: &str) -> bool {
    let option_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    help.match_indices(flag).any(|(i, _)| {
        !help[..i].chars().next_back().is_some_and(option_char)
            && !help[i + flag.len()..]
                .chars()
                .next()
                .is_some_and(option_char)
    })
}

#[test]
fn every_flag_of_the_deploy_command_lines_is_a_run_flag() {
    let out = Command::new(BIN)
        .args(["run", "--help"])
        .output()
        .expect("run agentcore-controller run --help");
    assert!(out.status.success(), "run --help: {}", show(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    let mut missing = Vec::new();
    for (source, argv) in command_lines() {
        assert_eq!(
            argv.first().map(String::as_str),
            Some("run"),
            "{source}: {argv:?}"
        );
        let flags = long_flags(&argv);
        assert!(!flags.is_empty(), "{source}: no flags found in {argv:?}");
        println!("{source}: {}", flags.join(" "));
        missing.extend(
            flags
                .into_iter()
                .filter(|f| !mentions(&help, f))
                .map(|f| format!("{source}: {f}")),
        );
    }
    assert!(
        missing.is_empty(),
        "flags that `agentcore-controller run --help` does not list:\n  {}",
        missing.join("\n  ")
    );
}

/// Each command line parses, values included (`--listen`, durations, `--leader-election`):
/// clap checks every argument before it reaches a trailing `--help`, which then stops it
/// before anything runs.
#[test]
fn the_deploy_command_lines_parse() {
    let mut failed = Vec::new();
    for (source, argv) in command_lines() {
        let out = Command::new(BIN)
            .args(&argv)
            .arg("--help")
            .output()
            .expect("run agentcore-controller");
        if out.status.success() {
            println!("{source}: parses");
        } else {
            failed.push(format!(
                "{source}: `agentcore-controller {}`:\n{}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim_end()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "command lines that do not parse:\n{}",
        failed.join("\n")
    );
}

#[test]
fn the_dockerfile_parser_reads_what_the_checks_rely_on() {
    let text = "# syntax=docker/dockerfile:1\nFROM a AS b\nRUN x \\\n  # note\n  y\nFROM c\nuser 0:0\nCMD [\"run\", \"-f\",\"/m\"]\n";
    let all = parse_dockerfile(text);
    let keywords: Vec<&str> = all.iter().map(|i| i.keyword.as_str()).collect();
    assert_eq!(keywords, ["FROM", "RUN", "FROM", "USER", "CMD"]);
    assert_eq!(all[1].args, "x y");
    assert_eq!((all[1].line, all[3].line), (3, 7));
    assert_eq!(stages(&all).len(), 2);
    assert!(is_root_user(&all[3].args) && is_root_user("root") && !is_root_user("65532:65532"));
    assert_eq!(
        exec_form(&all[4].args).expect("exec form"),
        ["run", "-f", "/m"]
    );
    assert_eq!(exec_form(r#"["a\"b"]"#).expect("escape"), ["a\"b"]);
    assert_eq!(exec_form("run -f /m"), None);
    assert!(mentions("  --lease-duration <D>", "--lease-duration"));
    assert!(!mentions("  --lease-duration <D>", "--lease"));
    assert!(!mentions("  --log-format <F>", "--log"));
}
