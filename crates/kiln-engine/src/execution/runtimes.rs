//! Which program runs a function, with which mounts and environment.
//!
//! `provided*` runtimes run the function's own `bootstrap`. Python and Node.js handlers run on
//! Kiln's bundled runtimes (`runtimes/` in the repository, embedded in the binary and written
//! to the data directory at start-up) with the host's interpreters, found once at start-up.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_sandbox::Mount;

/// The bundled runtime files, embedded at build time.
const PYTHON_BOOTSTRAP: &str = include_str!("../../../../runtimes/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../../../../runtimes/nodejs/index.mjs");

/// An interpreter on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// Its real path on the host (and inside sandboxes).
    pub executable: PathBuf,
    /// `3.11` for Python, `20` for Node.js.
    pub version: String,
    /// An install prefix outside `/usr` that sandboxes must see (pyenv, /opt builds).
    pub prefix: Option<PathBuf>,
}

/// Where a runtime family's interpreter comes from, as `kiln doctor` reports it.
#[derive(Debug, Clone)]
pub struct RuntimeStatus {
    pub family: &'static str,
    pub interpreters: Vec<Interpreter>,
    pub install_hint: &'static str,
}

/// How a function's runtime is started.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Mounts the runtime needs beyond the code and the system.
    pub mounts: Vec<Mount>,
    /// Runtime-specific variables (`AWS_EXECUTION_ENV`, `PYTHONPATH`, `NODE_PATH`, ...).
    pub env: Vec<(String, String)>,
    /// A caveat worth logging once (an interpreter version other than the one asked for).
    pub note: Option<String>,
}

/// Why a runtime cannot start on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LaunchError {
    #[error("{0}")]
    MissingInterpreter(String),
    #[error("Couldn't find valid bootstrap(s): [{0}]")]
    MissingBootstrap(String),
    #[error("{0}")]
    Unsupported(String),
}

/// Paths as the function sees them: Lambda's inside a sandbox, host paths in the plain tier.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub task_root: PathBuf,
    pub runtime_dir: PathBuf,
    pub opt: PathBuf,
}

/// Interpreters found on this host, and the bundled runtime files.
#[derive(Debug, Clone)]
pub struct RuntimeCatalog {
    pythons: Vec<Interpreter>,
    nodes: Vec<Interpreter>,
    files: PathBuf,
}

/// Interpreters named explicitly (flags or `KILN_PYTHON`/`KILN_NODE`).
#[derive(Debug, Clone, Default)]
pub struct InterpreterOverrides {
    pub python: Option<PathBuf>,
    pub node: Option<PathBuf>,
}

impl RuntimeCatalog {
    /// Writes the bundled runtimes under `data_dir` and finds the host's interpreters.
    pub fn detect(data_dir: &Path, overrides: &InterpreterOverrides) -> std::io::Result<Self> {
        let files = data_dir.join("runtimes").join(env!("CARGO_PKG_VERSION"));
        std::fs::create_dir_all(files.join("python"))?;
        std::fs::create_dir_all(files.join("nodejs"))?;
        write_if_changed(&files.join("python").join("bootstrap.py"), PYTHON_BOOTSTRAP)?;
        write_if_changed(&files.join("nodejs").join("index.mjs"), NODE_BOOTSTRAP)?;
        Ok(Self {
            pythons: find_pythons(overrides.python.as_deref()),
            nodes: find_nodes(overrides.node.as_deref()),
            files,
        })
    }

    /// What each runtime family would run with.
    pub fn status(&self) -> Vec<RuntimeStatus> {
        vec![
            RuntimeStatus {
                family: "python3.x",
                interpreters: self.pythons.clone(),
                install_hint: PYTHON_HINT,
            },
            RuntimeStatus {
                family: "nodejs",
                interpreters: self.nodes.clone(),
                install_hint: NODE_HINT,
            },
            RuntimeStatus {
                family: "provided, provided.al2, provided.al2023",
                interpreters: Vec::new(),
                install_hint: "nothing: the function's own bootstrap runs",
            },
        ]
    }

    /// How to start `runtime` for code extracted at `code_dir` with its layers merged at
    /// `opt_dir` (host paths).
    pub(crate) fn launch(
        &self,
        runtime: &str,
        code_dir: &Path,
        opt_dir: &Path,
        layout: &Layout,
    ) -> Result<Launch, LaunchError> {
        if runtime == "provided" || runtime.starts_with("provided.") {
            // Lambda runs the function's bootstrap, else one a layer brings.
            let bootstrap = if code_dir.join("bootstrap").is_file() {
                layout.task_root.join("bootstrap")
            } else if opt_dir.join("bootstrap").is_file() {
                layout.opt.join("bootstrap")
            } else {
                return Err(LaunchError::MissingBootstrap(format!(
                    "{} {}",
                    layout.task_root.join("bootstrap").display(),
                    layout.opt.join("bootstrap").display()
                )));
            };
            return Ok(Launch {
                program: bootstrap,
                args: Vec::new(),
                mounts: Vec::new(),
                env: Vec::new(),
                note: None,
            });
        }
        if let Some(version) = runtime.strip_prefix("python") {
            let interpreter = pick(&self.pythons, version).ok_or_else(|| {
                LaunchError::MissingInterpreter(format!(
                    "Kiln cannot run {runtime}: no Python 3 interpreter was found on this host. \
                     {PYTHON_HINT}"
                ))
            })?;
            let mut python_path = layout.runtime_dir.display().to_string();
            if layout.opt != Path::new("/opt") {
                // The bundled runtime puts /opt/python and its site-packages on sys.path, as
                // Lambda's does; plain processes have their layers elsewhere, so say where.
                let opt = layout.opt.display();
                let site = format!(
                    "{opt}/python/lib/python{}/site-packages",
                    interpreter.version
                );
                python_path = format!("{python_path}:{site}:{opt}/python");
            }
            return Ok(Launch {
                program: interpreter.executable.clone(),
                args: vec![
                    layout
                        .runtime_dir
                        .join("bootstrap.py")
                        .display()
                        .to_string(),
                ],
                mounts: self.runtime_mounts("python", interpreter, layout),
                env: vec![
                    ("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")),
                    ("PYTHONPATH".into(), python_path),
                ],
                note: (interpreter.version != version).then(|| {
                    format!(
                        "{runtime} runs on Python {} here ({}); install python{version} for an \
                         exact match",
                        interpreter.version,
                        interpreter.executable.display()
                    )
                }),
            });
        }
        if let Some(rest) = runtime.strip_prefix("nodejs") {
            let major = rest.trim_end_matches(".x");
            let interpreter = pick(&self.nodes, major).ok_or_else(|| {
                LaunchError::MissingInterpreter(format!(
                    "Kiln cannot run {runtime}: no Node.js was found on this host. {NODE_HINT}"
                ))
            })?;
            let opt = layout.opt.display();
            let runtime_dir = layout.runtime_dir.display();
            let task = layout.task_root.display();
            return Ok(Launch {
                program: interpreter.executable.clone(),
                args: vec![layout.runtime_dir.join("index.mjs").display().to_string()],
                mounts: self.runtime_mounts("nodejs", interpreter, layout),
                env: vec![
                    ("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{runtime}")),
                    (
                        "NODE_PATH".into(),
                        format!(
                            "{opt}/nodejs/node{major}/node_modules:{opt}/nodejs/node_modules:\
                             {runtime_dir}/node_modules:{runtime_dir}:{task}"
                        ),
                    ),
                ],
                note: (!major.is_empty() && interpreter.version != major).then(|| {
                    format!(
                        "{runtime} runs on Node.js {} here ({}); install Node.js {major} for an \
                         exact match",
                        interpreter.version,
                        interpreter.executable.display()
                    )
                }),
            });
        }
        Err(LaunchError::Unsupported(format!(
            "Kiln does not run {runtime} functions yet: it runs provided.al2023, provided.al2, \
             provided, python3.x and nodejs runtimes (see docs/compat.md)."
        )))
    }

    /// The bundled runtime at `/var/runtime`, and the interpreter's prefix if outside `/usr`.
    fn runtime_mounts(
        &self,
        family: &str,
        interpreter: &Interpreter,
        layout: &Layout,
    ) -> Vec<Mount> {
        let mut mounts = vec![Mount::Bind {
            source: self.files.join(family),
            target: layout.runtime_dir.clone(),
            writable: false,
        }];
        if let Some(prefix) = &interpreter.prefix {
            mounts.push(Mount::Bind {
                source: prefix.clone(),
                target: prefix.clone(),
                writable: false,
            });
        }
        mounts
    }

    /// The host directory holding a runtime family's bundled files.
    pub(crate) fn files(&self, family: &str) -> PathBuf {
        self.files.join(family)
    }
}

const PYTHON_HINT: &str = "Install Python 3 (for example `apt-get install python3`, or python3.12 \
                           for an exact match) or point --python / KILN_PYTHON at an interpreter.";
const NODE_HINT: &str = "Install Node.js (for example `apt-get install nodejs`) or point --node / \
                         KILN_NODE at a `node` binary.";

/// The interpreter with exactly `version`, else the newest one.
fn pick<'a>(interpreters: &'a [Interpreter], version: &str) -> Option<&'a Interpreter> {
    interpreters
        .iter()
        .find(|interpreter| interpreter.version == version)
        .or_else(|| interpreters.first())
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == content) {
        return Ok(());
    }
    std::fs::write(path, content)
}

/// Python interpreters, newest first: an override, then `/usr` and `/usr/local` binaries,
/// then whatever `python3` on the PATH really is.
fn find_pythons(override_path: Option<&Path>) -> Vec<Interpreter> {
    let candidates: Vec<PathBuf> = match override_path {
        // An explicit choice is the only candidate.
        Some(path) => vec![path.to_owned()],
        None => (6..=20)
            .rev()
            .flat_map(|minor| {
                ["/usr/bin", "/usr/local/bin"]
                    .map(|dir| PathBuf::from(format!("{dir}/python3.{minor}")))
            })
            .chain(std::iter::once(PathBuf::from("python3")))
            .collect(),
    };
    let mut found: Vec<Interpreter> = Vec::new();
    for candidate in candidates {
        if candidate.is_absolute() && !candidate.exists() {
            continue;
        }
        let Some(interpreter) = probe_python(&candidate) else {
            continue;
        };
        if !found
            .iter()
            .any(|known| known.executable == interpreter.executable)
        {
            found.push(interpreter);
        }
    }
    found.sort_by_key(|interpreter| std::cmp::Reverse(version_key(&interpreter.version)));
    found
}

fn probe_python(candidate: &Path) -> Option<Interpreter> {
    let output = Command::new(candidate)
        .args([
            "-c",
            "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2]); print(sys.base_prefix)",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let mut lines = text.lines();
    let executable = PathBuf::from(lines.next()?);
    let version = lines.next()?.to_owned();
    let base_prefix = PathBuf::from(lines.next()?);
    if !version.starts_with("3.") {
        return None;
    }
    let executable = executable.canonicalize().unwrap_or(executable);
    let prefix = (!base_prefix.starts_with("/usr")).then_some(base_prefix);
    Some(Interpreter {
        executable,
        version,
        prefix,
    })
}

fn find_nodes(override_path: Option<&Path>) -> Vec<Interpreter> {
    let candidates: Vec<PathBuf> = match override_path {
        Some(path) => vec![path.to_owned()],
        None => vec![
            "/usr/bin/node".into(),
            "/usr/local/bin/node".into(),
            "node".into(),
        ],
    };
    let mut found: Vec<Interpreter> = Vec::new();
    for candidate in candidates {
        if candidate.is_absolute() && !candidate.exists() {
            continue;
        }
        let Some(interpreter) = probe_node(&candidate) else {
            continue;
        };
        if !found
            .iter()
            .any(|known| known.executable == interpreter.executable)
        {
            found.push(interpreter);
        }
    }
    found
}

fn probe_node(candidate: &Path) -> Option<Interpreter> {
    let output = Command::new(candidate)
        .args([
            "-e",
            "console.log(process.execPath); console.log(process.versions.node)",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let mut lines = text.lines();
    let executable = PathBuf::from(lines.next()?);
    let major = lines.next()?.split('.').next()?.to_owned();
    let executable = executable.canonicalize().unwrap_or(executable);
    // Node installed outside /usr needs its installation directory (bin/.. ) visible.
    let prefix = (!executable.starts_with("/usr"))
        .then(|| {
            executable
                .parent()
                .and_then(Path::parent)
                .map(Path::to_owned)
        })
        .flatten();
    Some(Interpreter {
        executable,
        version: major,
        prefix,
    })
}

fn version_key(version: &str) -> Vec<u32> {
    version
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// Everything that goes into a function's environment variables.
#[derive(Debug)]
pub(crate) struct EnvironmentInputs<'a> {
    pub function_name: &'a str,
    pub version: &'a str,
    pub memory_mb: u32,
    pub region: &'a str,
    pub handler: &'a str,
    pub log_group: &'a str,
    pub log_stream: &'a str,
    pub runtime_api: &'a str,
    pub layout: &'a Layout,
    pub initialization_type: &'a str,
    pub endpoint_url: &'a str,
    pub sqs_endpoint_url: Option<&'a str>,
    pub json_logs: Option<(&'a str, &'a str)>,
    pub user: &'a [(String, String)],
    pub runtime: &'a [(String, String)],
}

/// The function's environment, exactly as Lambda builds it (section 8 of the reference), plus
/// `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_SQS`) so that SDKs inside functions reach Kiln. This is the only place that
/// decides these variables.
pub(crate) fn lambda_environment(inputs: &EnvironmentInputs<'_>) -> Vec<(String, String)> {
    let task = inputs.layout.task_root.display().to_string();
    let runtime_dir = inputs.layout.runtime_dir.display().to_string();
    let opt = inputs.layout.opt.display().to_string();
    // Unreserved defaults a function may override with its own variables.
    let mut env: Vec<(String, String)> = vec![
        ("LANG".into(), "en_US.UTF-8".into()),
        (
            "PATH".into(),
            format!("/usr/local/bin:/usr/bin/:/bin:{opt}/bin"),
        ),
        (
            "LD_LIBRARY_PATH".into(),
            format!(
                "/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:{task}/lib:{opt}/lib"
            ),
        ),
        ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        (
            "AWS_XRAY_DAEMON_ADDRESS".into(),
            "169.254.79.129:2000".into(),
        ),
        ("_AWS_XRAY_DAEMON_ADDRESS".into(), "169.254.79.129".into()),
        ("_AWS_XRAY_DAEMON_PORT".into(), "2000".into()),
        ("AWS_ENDPOINT_URL".into(), inputs.endpoint_url.into()),
    ];
    if let Some(sqs) = inputs.sqs_endpoint_url {
        // SQS has its own port; SDKs read the service-specific variable first.
        env.push(("AWS_ENDPOINT_URL_SQS".into(), sqs.into()));
    }
    env.extend(inputs.runtime.iter().cloned());
    let mut set = |key: &str, value: String| {
        env.retain(|(existing, _)| existing != key);
        env.push((key.to_owned(), value));
    };
    for (key, value) in inputs.user {
        set(key, value.clone());
    }
    // Reserved: set last, so nothing overrides them.
    set("_HANDLER", inputs.handler.into());
    set("AWS_LAMBDA_RUNTIME_API", inputs.runtime_api.into());
    set("AWS_REGION", inputs.region.into());
    set("AWS_DEFAULT_REGION", inputs.region.into());
    set("AWS_LAMBDA_FUNCTION_NAME", inputs.function_name.into());
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        inputs.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_FUNCTION_VERSION", inputs.version.into());
    set(
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        inputs.initialization_type.into(),
    );
    set("AWS_LAMBDA_LOG_GROUP_NAME", inputs.log_group.into());
    set("AWS_LAMBDA_LOG_STREAM_NAME", inputs.log_stream.into());
    // Kiln accepts any credentials; these let SDKs sign requests to it.
    set("AWS_ACCESS_KEY_ID", "KILNLOCALACCESSKEY".into());
    set(
        "AWS_SECRET_ACCESS_KEY",
        "kiln-local-secret-access-key".into(),
    );
    set("AWS_SESSION_TOKEN", "kiln-local-session-token".into());
    set("LAMBDA_TASK_ROOT", task);
    set("LAMBDA_RUNTIME_DIR", runtime_dir);
    set("TZ", ":UTC".into());
    if let Some((application_level, _system_level)) = inputs.json_logs {
        set("AWS_LAMBDA_LOG_FORMAT", "JSON".into());
        set("AWS_LAMBDA_LOG_LEVEL", application_level.into());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            task_root: "/var/task".into(),
            runtime_dir: "/var/runtime".into(),
            opt: "/opt".into(),
        }
    }

    fn catalog(pythons: &[&str], nodes: &[&str]) -> RuntimeCatalog {
        let interpreter = |version: &str, program: &str| Interpreter {
            executable: PathBuf::from(format!("/usr/bin/{program}")),
            version: version.into(),
            prefix: None,
        };
        RuntimeCatalog {
            pythons: pythons
                .iter()
                .map(|v| interpreter(v, &format!("python{v}")))
                .collect(),
            nodes: nodes.iter().map(|v| interpreter(v, "node")).collect(),
            files: "/data/runtimes/x".into(),
        }
    }

    #[test]
    fn python_prefers_the_exact_version_and_notes_a_fallback() {
        let catalog = catalog(&["3.12", "3.11"], &[]);
        let launch = catalog
            .launch(
                "python3.11",
                Path::new("/code"),
                Path::new("/none"),
                &layout(),
            )
            .unwrap();
        assert_eq!(launch.program, PathBuf::from("/usr/bin/python3.11"));
        assert_eq!(launch.args, ["/var/runtime/bootstrap.py"]);
        assert!(launch.note.is_none());
        let launch = catalog
            .launch(
                "python3.13",
                Path::new("/code"),
                Path::new("/none"),
                &layout(),
            )
            .unwrap();
        assert_eq!(launch.program, PathBuf::from("/usr/bin/python3.12"));
        assert!(launch.note.unwrap().contains("install python3.13"));
        assert!(
            launch
                .env
                .contains(&("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.13".into()))
        );
    }

    #[test]
    fn missing_interpreters_say_what_to_install() {
        let catalog = catalog(&[], &[]);
        let error = catalog
            .launch(
                "python3.12",
                Path::new("/code"),
                Path::new("/none"),
                &layout(),
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("apt-get install python3"),
            "{error}"
        );
        let error = catalog
            .launch(
                "nodejs20.x",
                Path::new("/code"),
                Path::new("/none"),
                &layout(),
            )
            .unwrap_err();
        assert!(error.to_string().contains("Node.js"), "{error}");
        let error = catalog
            .launch("java21", Path::new("/code"), Path::new("/none"), &layout())
            .unwrap_err();
        assert!(matches!(error, LaunchError::Unsupported(_)));
    }

    #[test]
    fn provided_runtimes_need_a_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog(&[], &[]);
        let error = catalog
            .launch("provided.al2023", dir.path(), Path::new("/none"), &layout())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
        );
        std::fs::write(dir.path().join("bootstrap"), "#!/bin/sh").unwrap();
        let launch = catalog
            .launch("provided.al2023", dir.path(), Path::new("/none"), &layout())
            .unwrap();
        assert_eq!(launch.program, PathBuf::from("/var/task/bootstrap"));
    }

    #[test]
    fn a_layer_may_bring_the_bootstrap() {
        let code = tempfile::tempdir().unwrap();
        let opt = tempfile::tempdir().unwrap();
        let catalog = catalog(&[], &[]);
        std::fs::write(opt.path().join("bootstrap"), "#!/bin/sh").unwrap();
        let launch = catalog
            .launch("provided.al2", code.path(), opt.path(), &layout())
            .unwrap();
        assert_eq!(launch.program, PathBuf::from("/opt/bootstrap"));
        // The function's own bootstrap wins over a layer's.
        std::fs::write(code.path().join("bootstrap"), "#!/bin/sh").unwrap();
        let launch = catalog
            .launch("provided.al2", code.path(), opt.path(), &layout())
            .unwrap();
        assert_eq!(launch.program, PathBuf::from("/var/task/bootstrap"));
    }

    #[test]
    fn python_finds_layers_where_lambda_puts_them() {
        let catalog = catalog(&["3.12"], &[]);
        let path_of = |layout: &Layout| {
            let launch = catalog
                .launch("python3.12", Path::new("/code"), Path::new("/none"), layout)
                .unwrap();
            launch
                .env
                .iter()
                .find(|(key, _)| key == "PYTHONPATH")
                .map(|(_, value)| value.clone())
                .unwrap()
        };
        // In a sandbox, Lambda's value: the runtime adds /opt/python... to sys.path itself.
        assert_eq!(path_of(&layout()), "/var/runtime");
        let plain = Layout {
            opt: "/data/layers-merged/k".into(),
            ..layout()
        };
        assert_eq!(
            path_of(&plain),
            "/var/runtime:/data/layers-merged/k/python/lib/python3.12/site-packages:\
             /data/layers-merged/k/python"
        );
    }

    #[test]
    fn reserved_variables_win_and_users_may_override_the_rest() {
        let user = vec![
            ("PATH".to_owned(), "/custom".to_owned()),
            ("MY_VAR".to_owned(), "1".to_owned()),
        ];
        let env = lambda_environment(&EnvironmentInputs {
            function_name: "f",
            version: "$LATEST",
            memory_mb: 256,
            region: "us-east-1",
            handler: "app.handler",
            log_group: "/aws/lambda/f",
            log_stream: "2024/01/01/[$LATEST]abc",
            runtime_api: "127.0.0.1:9001",
            layout: &layout(),
            initialization_type: "on-demand",
            endpoint_url: "http://127.0.0.1:9700",
            sqs_endpoint_url: Some("http://127.0.0.1:9701"),
            json_logs: None,
            user: &user,
            runtime: &[("AWS_EXECUTION_ENV".into(), "AWS_Lambda_python3.12".into())],
        });
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/custom"));
        assert_eq!(get("MY_VAR"), Some("1"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9001"));
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/var/task"));
        assert_eq!(get("TZ"), Some(":UTC"));
        assert_eq!(get("AWS_EXECUTION_ENV"), Some("AWS_Lambda_python3.12"));
        assert_eq!(get("AWS_ENDPOINT_URL_SQS"), Some("http://127.0.0.1:9701"));
        let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "no duplicates");
    }
}
