//! The deployment files in `deploy/` cannot run here (no Docker engine, no cluster), so this
//! test parses them and checks that their cross-references hold: the binaries the manifests
//! run are the ones the Dockerfile builds and installs; the arguments they pass are accepted by
//! the binary (run with `INITKIT_DRY_RUN=1`); their templates render with the environment they
//! are given; volume names, mount paths and service names refer to things that exist; every
//! container runs non-root on a read-only root filesystem with no capabilities.
#![cfg(all(feature = "tcp", feature = "template", feature = "command"))]

mod example_bin;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use saphyr::{LoadableYamlNode, Scalar, Yaml};

// ---------------------------------------------------------------------------------------------
// YAML, as a small owned tree (scalars kept as text, the way Kubernetes and Compose read them
// where a string is expected).

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

static NULL: Node = Node::Null;

impl Node {
    fn from_yaml(yaml: &Yaml<'_>) -> Self {
        match yaml {
            Yaml::Value(Scalar::Null) | Yaml::Alias(_) | Yaml::BadValue => Node::Null,
            Yaml::Value(Scalar::Boolean(b)) => Node::Str(b.to_string()),
            Yaml::Value(Scalar::Integer(i)) => Node::Str(i.to_string()),
            Yaml::Value(Scalar::FloatingPoint(f)) => Node::Str(f.to_string()),
            Yaml::Value(Scalar::String(s)) => Node::Str(s.to_string()),
            Yaml::Representation(s, _, _) => Node::Str(s.to_string()),
            Yaml::Sequence(items) => Node::Seq(items.iter().map(Self::from_yaml).collect()),
            Yaml::Mapping(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| {
                        let key = match Self::from_yaml(k) {
                            Node::Str(s) => s,
                            other => panic!("unexpected mapping key {other:?}"),
                        };
                        (key, Self::from_yaml(v))
                    })
                    .collect(),
            ),
            Yaml::Tagged(_, node) => Self::from_yaml(node),
        }
    }

    fn get(&self, key: &str) -> &Node {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }

    fn path(&self, path: &str) -> &Node {
        path.split('.').fold(self, Node::get)
    }

    fn str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    fn text(&self, what: &str) -> &str {
        self.str()
            .unwrap_or_else(|| panic!("{what}: expected a string, found {self:?}"))
    }

    fn seq(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A mapping of strings, as (key, value) pairs.
    fn string_pairs(&self, what: &str) -> Vec<(String, String)> {
        self.entries()
            .iter()
            .map(|(k, v)| (k.clone(), v.text(what).to_owned()))
            .collect()
    }

    fn strings(&self) -> Vec<String> {
        self.seq()
            .iter()
            .map(|n| n.text("list item").to_owned())
            .collect()
    }

    fn is_null(&self) -> bool {
        *self == Node::Null
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse_yaml(name: &str, text: &str) -> Vec<Node> {
    Yaml::load_from_str(text)
        .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"))
        .iter()
        .map(Node::from_yaml)
        .collect()
}

fn load(path: &str) -> Vec<Node> {
    parse_yaml(path, &read(path))
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile: what the final image holds.

#[derive(Debug, Default)]
struct Image {
    /// Path in the image → the example it is built from.
    binaries: BTreeMap<String, String>,
    /// Path in the image → the repository path copied there.
    copies: Vec<(String, String)>,
    entrypoint: Vec<String>,
    user: String,
    /// Examples and features the build stage compiles.
    built_examples: BTreeSet<String>,
    features: BTreeSet<String>,
}

fn dockerfile() -> Image {
    let text = read("deploy/Dockerfile").replace("\\\n", " ");
    let mut image = Image::default();
    let stages = text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM "));
    let mut stage = 0;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("FROM") => stage += 1,
            Some("RUN") if line.contains("cargo build") => {
                for pair in words.windows(2) {
                    match pair[0] {
                        "--example" => {
                            image.built_examples.insert(pair[1].to_owned());
                        }
                        "--features" => {
                            image.features.extend(pair[1].split(',').map(str::to_owned))
                        }
                        _ => {}
                    }
                }
            }
            Some("COPY") if stage == stages => {
                let (from, rest): (Vec<&str>, Vec<&str>) =
                    words[1..].iter().partition(|w| w.starts_with("--"));
                let (dest, srcs) = rest.split_last().expect("COPY has a destination");
                for src in srcs {
                    if from.iter().any(|f| f.starts_with("--from=")) {
                        let example = src.strip_prefix("/out/").expect("binaries come from /out");
                        image
                            .binaries
                            .insert((*dest).to_owned(), example.to_owned());
                    } else {
                        image.copies.push((
                            (*dest).trim_end_matches('/').to_owned(),
                            src.trim_end_matches('/').to_owned(),
                        ));
                    }
                }
            }
            Some("ENTRYPOINT") if stage == stages => {
                let json = line.trim_start_matches("ENTRYPOINT").trim();
                image.entrypoint = parse_yaml("ENTRYPOINT", json)[0].strings();
            }
            Some("USER") if stage == stages => image.user = words[1].to_owned(),
            _ => {}
        }
    }
    image
}

impl Image {
    /// The example a command in a manifest runs, checked against the image.
    fn example_for(&self, program: &str) -> &str {
        self.binaries.get(program).unwrap_or_else(|| {
            panic!(
                "{program} is not installed by deploy/Dockerfile: {:?}",
                self.binaries
            )
        })
    }

    /// Each directory copied into the image → the repository directory it comes from.
    fn local_copies(&self) -> Vec<(String, PathBuf)> {
        self.copies
            .iter()
            .map(|(dest, src)| (dest.clone(), repo().join(src)))
            .collect()
    }

    /// Whether the repository copies something to `dir` in the image.
    fn has_copy_at(&self, dir: &str) -> bool {
        self.copies
            .iter()
            .any(|(dest, _)| dest == dir.trim_end_matches('/'))
    }
}

#[test]
fn the_dockerfile_builds_every_example_it_installs_with_the_features_they_need() {
    let image = dockerfile();
    assert!(!image.binaries.is_empty());
    let manifest = read("Cargo.toml");
    let stanzas = parse_examples(&manifest);
    for (path, example) in &image.binaries {
        assert!(
            image.built_examples.contains(example),
            "{path}: example {example} is not built"
        );
        let required = stanzas
            .get(example)
            .unwrap_or_else(|| panic!("no [[example]] {example} in Cargo.toml"));
        for feature in required {
            assert!(
                image.features.contains(feature),
                "{example} needs feature {feature}: {:?}",
                image.features
            );
        }
        assert!(repo().join(format!("examples/{example}.rs")).exists());
    }
    for (dest, src) in &image.copies {
        assert!(
            repo().join(src).exists(),
            "COPY {src} {dest}: no such path in the repository"
        );
    }
    assert!(
        image.binaries.contains_key(&image.entrypoint[0]),
        "ENTRYPOINT {:?}",
        image.entrypoint
    );
    assert!(
        !image.user.is_empty() && !is_root(&image.user),
        "USER {}",
        image.user
    );
}

/// Whether a `user[:group]` (Dockerfile `USER`, Compose `user`) is root.
fn is_root(user: &str) -> bool {
    let uid = user.split(':').next().unwrap_or_default();
    uid == "root" || uid.parse::<u32>() == Ok(0)
}

/// `[[example]]` name → required features, from the root manifest.
fn parse_examples(manifest: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for block in manifest.split("[[example]]").skip(1) {
        let block = block.split("\n[").next().unwrap();
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(key)?
                        .trim()
                        .strip_prefix('=')
                        .map(str::trim)
                })
                .map(str::to_owned)
        };
        let name = field("name").unwrap().trim_matches('"').to_owned();
        let features = field("required-features")
            .map(|f| parse_yaml("required-features", &f)[0].strings())
            .unwrap_or_default();
        out.insert(name, features);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running the example binaries the manifests name.

/// Runs the example installed at `program` in the image with `args` and `env` (and
/// `INITKIT_DRY_RUN=1` when `dry_run`), after rewriting every path under an image directory
/// of `paths` to the local directory it stands for.
fn run_example(
    image: &Image,
    program: &str,
    args: &[String],
    env: &[(String, String)],
    paths: &[(String, PathBuf)],
    dry_run: bool,
) -> Output {
    let map = |arg: &str| -> String {
        arg.split('=')
            .map(|part| {
                paths
                    .iter()
                    .find_map(|(dir, local)| {
                        let rest = part.strip_prefix(dir.as_str())?.strip_prefix('/')?;
                        Some(local.join(rest).display().to_string())
                    })
                    .unwrap_or_else(|| part.to_owned())
            })
            .collect::<Vec<_>>()
            .join("=")
    };
    let mut cmd = Command::new(example_bin::path(image.example_for(program)));
    cmd.args(args.iter().map(|a| map(a)))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("INITKIT_TERMINATION_LOG", "/dev/null")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, map(v));
    }
    if dry_run {
        cmd.env("INITKIT_DRY_RUN", "1");
    }
    cmd.output().unwrap()
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The values of `--render` arguments, as (template, destination).
fn renders(args: &[String]) -> Vec<(String, String)> {
    args.windows(2)
        .filter(|w| w[0] == "--render")
        .map(|w| {
            let (src, dest) = w[1].split_once('=').expect("--render TEMPLATE=DEST");
            (src.to_owned(), dest.to_owned())
        })
        .collect()
}

/// Checks a container running our image: the binary is installed, a dry run accepts its
/// arguments, and its templates render with its environment (waits left out, destinations in
/// a temp dir).
fn check_init_command(
    what: &str,
    image: &Image,
    command: &[String],
    env: &[(String, String)],
    paths: &[(String, PathBuf)],
) {
    let (program, args) = command
        .split_first()
        .unwrap_or_else(|| panic!("{what}: no command"));
    let output = run_example(image, program, args, env, paths, true);
    assert_success(&format!("{what}: dry run of {command:?}"), &output);
    let out = tempfile::tempdir().unwrap();
    for (i, (src, dest)) in renders(args).iter().enumerate() {
        let local_dest = out
            .path()
            .join(i.to_string())
            .join(Path::new(dest).file_name().unwrap());
        let render = vec![
            "--render".to_owned(),
            format!("{src}={}", local_dest.display()),
        ];
        let output = run_example(image, program, &render, env, paths, false);
        assert_success(
            &format!("{what}: rendering {src} with the container's environment"),
            &output,
        );
        let rendered = std::fs::read_to_string(&local_dest).unwrap();
        assert!(!rendered.is_empty(), "{what}: {src} rendered nothing");
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes pod specs (the manifests, and the Helm chart's templates).

struct Container<'a> {
    node: &'a Node,
    init: bool,
}

impl Container<'_> {
    fn name(&self) -> &str {
        self.node.get("name").text("container name")
    }

    fn mounts(&self) -> Vec<(String, String)> {
        self.node
            .get("volumeMounts")
            .seq()
            .iter()
            .map(|m| {
                (
                    m.get("name").text("mount name").to_owned(),
                    m.get("mountPath").text("mountPath").to_owned(),
                )
            })
            .collect()
    }

    fn command(&self) -> Vec<String> {
        let mut argv = self.node.get("command").strings();
        argv.extend(self.node.get("args").strings());
        argv
    }

    fn env(&self) -> Vec<(String, String)> {
        self.node
            .get("env")
            .seq()
            .iter()
            .map(|e| {
                (
                    e.get("name").text("env name").to_owned(),
                    e.get("value").str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

fn containers(pod: &Node) -> Vec<Container<'_>> {
    let init = pod
        .get("initContainers")
        .seq()
        .iter()
        .map(|node| Container { node, init: true });
    let main = pod
        .get("containers")
        .seq()
        .iter()
        .map(|node| Container { node, init: false });
    init.chain(main).collect()
}

/// Volumes, mounts, the shared `emptyDir`, the termination message policy.
fn check_pod_wiring(what: &str, pod: &Node) {
    let volumes: BTreeMap<&str, &Node> = pod
        .get("volumes")
        .seq()
        .iter()
        .map(|v| (v.get("name").text("volume name"), v))
        .collect();
    let containers = containers(pod);
    assert!(
        containers.iter().any(|c| c.init),
        "{what}: no init container"
    );
    let mut used = BTreeSet::new();
    for c in &containers {
        for (name, path) in c.mounts() {
            assert!(
                volumes.contains_key(name.as_str()),
                "{what}: {}: volume {name:?} is not in the pod's volumes",
                c.name()
            );
            assert!(
                path.starts_with('/'),
                "{what}: {}: mountPath {path:?}",
                c.name()
            );
            used.insert(name);
        }
        if c.init {
            assert_eq!(
                c.node.get("terminationMessagePolicy").str(),
                Some("FallbackToLogsOnError"),
                "{what}: {}",
                c.name()
            );
        }
    }
    for name in volumes.keys() {
        assert!(
            used.contains(*name),
            "{what}: volume {name:?} is mounted nowhere"
        );
    }
    // An emptyDir that an init container writes and an app container reads, at the same path.
    let shared: Vec<_> = volumes
        .iter()
        .filter(|(_, v)| v.entries().iter().any(|(k, _)| k == "emptyDir"))
        .filter_map(|(name, _)| {
            let at = |init: bool| {
                containers
                    .iter()
                    .filter(|c| c.init == init)
                    .flat_map(|c| c.mounts())
                    .filter(|(n, _)| n == name)
                    .map(|(_, p)| p)
                    .collect::<BTreeSet<_>>()
            };
            let (init, app) = (at(true), at(false));
            (!init.is_empty() && !app.is_empty()).then(|| {
                assert_eq!(
                    init, app,
                    "{what}: emptyDir {name:?} is mounted at different paths"
                );
                *name
            })
        })
        .collect();
    assert!(
        !shared.is_empty(),
        "{what}: no emptyDir shared by an init container and the app"
    );
    // Every --render destination lands on such a volume, where the app mounts it.
    for c in containers.iter().filter(|c| c.init) {
        for (_, dest) in renders(&c.command()) {
            let mount = c
                .mounts()
                .into_iter()
                .find(|(_, path)| Path::new(&dest).starts_with(path))
                .unwrap_or_else(|| panic!("{what}: {}: {dest} is on no volume", c.name()));
            assert!(
                shared.contains(&mount.0.as_str()),
                "{what}: {dest} is on {:?}, which the app does not mount",
                mount.0
            );
        }
    }
}

/// The restrictive security context, from the container's own settings over the pod's.
fn check_security(what: &str, pod_ctx: &Node, container_ctx: &Node) {
    let setting = |key: &str| {
        let own = container_ctx.path(key);
        if own.is_null() {
            pod_ctx.path(key)
        } else {
            own
        }
    };
    assert_eq!(
        setting("runAsNonRoot").str(),
        Some("true"),
        "{what}: runAsNonRoot"
    );
    assert_eq!(
        container_ctx.get("readOnlyRootFilesystem").str(),
        Some("true"),
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        container_ctx.get("allowPrivilegeEscalation").str(),
        Some("false"),
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        container_ctx.path("capabilities.drop").strings(),
        ["ALL"],
        "{what}: capabilities"
    );
    assert_eq!(
        setting("seccompProfile.type").str(),
        Some("RuntimeDefault"),
        "{what}: seccompProfile"
    );
    if let Some(uid) = setting("runAsUser").str() {
        assert_ne!(uid, "0", "{what}: runAsUser");
    }
}

/// Each configMap volume mounted by `container`: its mount path → a temp dir holding the
/// ConfigMap's files (found in `config_maps` by name).
fn config_map_paths(
    what: &str,
    pod: &Node,
    container: &Container<'_>,
    config_maps: &BTreeMap<String, Vec<(String, String)>>,
    dir: &Path,
) -> Vec<(String, PathBuf)> {
    let mut paths = Vec::new();
    for (name, mount_path) in container.mounts() {
        let volume = pod
            .get("volumes")
            .seq()
            .iter()
            .find(|v| v.get("name").str() == Some(&name))
            .unwrap();
        let Some(map_name) = volume.path("configMap.name").str() else {
            continue;
        };
        let files = config_maps
            .get(map_name)
            .unwrap_or_else(|| panic!("{what}: ConfigMap {map_name:?} is not defined"));
        let local = dir.join(&name);
        std::fs::create_dir_all(&local).unwrap();
        for (file, content) in files {
            std::fs::write(local.join(file), content).unwrap();
        }
        paths.push((mount_path, local));
    }
    paths
}

#[test]
fn the_kubernetes_deployment_wires_its_init_containers_to_the_app() {
    let image = dockerfile();
    let docs = load("deploy/kubernetes/deployment.yaml");
    let kinds = |kind: &'static str| {
        docs.iter()
            .filter(move |d| d.get("kind").str() == Some(kind))
    };
    let config_maps: BTreeMap<String, Vec<(String, String)>> = kinds("ConfigMap")
        .map(|cm| {
            (
                cm.path("metadata.name").text("name").to_owned(),
                cm.get("data").string_pairs("data"),
            )
        })
        .collect();
    let claims: BTreeSet<&str> = kinds("PersistentVolumeClaim")
        .map(|p| p.path("metadata.name").text("name"))
        .collect();
    let deployments: Vec<&Node> = kinds("Deployment").collect();
    assert_eq!(deployments.len(), 1);
    let pod = deployments[0].path("spec.template.spec");
    check_pod_wiring("deployment.yaml", pod);
    for volume in pod.get("volumes").seq() {
        if let Some(claim) = volume.path("persistentVolumeClaim.claimName").str() {
            assert!(
                claims.contains(claim),
                "PersistentVolumeClaim {claim:?} is not defined"
            );
        }
    }
    let pod_security = pod.get("securityContext");
    let tmp = tempfile::tempdir().unwrap();
    for container in containers(pod) {
        let what = format!("deployment.yaml: {}", container.name());
        check_security(&what, pod_security, container.node.get("securityContext"));
        if !container.init {
            continue;
        }
        let mut paths = config_map_paths(&what, pod, &container, &config_maps, tmp.path());
        paths.extend(image.local_copies());
        check_init_command(
            &what,
            &image,
            &container.command(),
            &container.env(),
            &paths,
        );
        for (key, value) in container.env() {
            if key == "MIGRATIONS_DIR" {
                assert!(
                    image.has_copy_at(&value),
                    "{what}: MIGRATIONS_DIR {value} is not in the image"
                );
            }
            if key == "DATA_DIR" {
                assert!(
                    container.mounts().iter().any(|(_, p)| *p == value),
                    "{what}: DATA_DIR {value} is not a volume"
                );
            }
        }
    }
    // The template in the ConfigMap is the one the image ships (deploy/templates).
    assert_eq!(
        config_maps["orders-templates"][0].1,
        read("deploy/templates/app.toml.j2")
    );
}

// ---------------------------------------------------------------------------------------------
// The Helm chart.

const CHART: &str = "deploy/helm/initkit-example";

/// Every `.Values.a.b` path a template names.
fn values_paths(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(".Values.") {
        rest = &rest[i + ".Values.".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        out.push(rest[..end].trim_end_matches('.').to_owned());
        rest = &rest[end..];
    }
    out
}

/// A template with its actions blanked: lines holding only actions (`range`, `end`, `include`,
/// `toYaml`) are dropped, and inline actions become `TEMPLATED`, so the YAML structure can be
/// parsed and checked.
fn blank_actions(template: &str) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{") && trimmed.ends_with("}}") && !trimmed[2..].contains("{{") {
            continue;
        }
        let mut line = line.to_owned();
        while let (Some(start), Some(end)) = (line.find("{{"), line.find("}}")) {
            line.replace_range(start..end + 2, "TEMPLATED");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The chart's templates: file name → text.
fn chart_templates() -> BTreeMap<String, String> {
    let dir = repo().join(CHART).join("templates");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_helm_chart_names_only_values_and_helpers_that_exist() {
    let chart = &load(&format!("{CHART}/Chart.yaml"))[0];
    assert_eq!(chart.get("apiVersion").str(), Some("v2"));
    assert_eq!(chart.get("name").str(), Some("initkit-example"));
    assert!(
        chart
            .get("version")
            .str()
            .is_some_and(|v| v.split('.').count() == 3)
    );
    let values = &load(&format!("{CHART}/values.yaml"))[0];
    let templates = chart_templates();
    let helpers = &templates["_helpers.tpl"];
    let mut referenced = 0;
    for (name, text) in &templates {
        for path in values_paths(text) {
            assert!(
                !values.path(&path).is_null(),
                "{name}: .Values.{path} is not in values.yaml"
            );
            referenced += 1;
        }
        for include in text.split("include \"").skip(1) {
            let helper = include.split('"').next().unwrap();
            assert!(
                helpers.contains(&format!("define \"{helper}\"")),
                "{name}: include {helper:?} is not defined"
            );
        }
    }
    assert!(referenced > 10, "only {referenced} values referenced");
}

#[test]
fn the_helm_chart_bootstraps_the_configuration_before_the_app_starts() {
    let image = dockerfile();
    let values = &load(&format!("{CHART}/values.yaml"))[0];
    let templates = chart_templates();
    let deployment = &templates["deployment.yaml"];
    let docs = parse_yaml(
        "deployment.yaml (actions blanked)",
        &blank_actions(deployment),
    );
    let pod = docs[0].path("spec.template.spec");
    check_pod_wiring("helm deployment.yaml", pod);
    // The values hold a restrictive context, and the template applies it to the pod and to
    // every container (each `securityContext:` is followed by its `toYaml`, blanked above).
    check_security(
        "helm values",
        values.get("podSecurityContext"),
        values.get("containerSecurityContext"),
    );
    assert!(
        deployment.contains("toYaml .Values.podSecurityContext"),
        "podSecurityContext is not applied"
    );
    for container in containers(pod) {
        assert!(
            container
                .node
                .entries()
                .iter()
                .any(|(k, _)| k == "securityContext"),
            "helm: {}: no securityContext",
            container.name()
        );
    }
    assert_eq!(
        deployment
            .matches("toYaml .Values.containerSecurityContext")
            .count(),
        containers(pod).len(),
        "containerSecurityContext is not applied to every container"
    );
    let init = containers(pod).into_iter().find(|c| c.init).unwrap();
    assert_eq!(init.name(), "bootstrap-config");
    // The arguments as the template builds them from the values.
    let mut command = init.node.get("command").strings();
    command.extend([
        "--timeout".to_owned(),
        values
            .path("initkit.timeoutSeconds")
            .text("timeoutSeconds")
            .to_owned(),
    ]);
    for target in values.path("initkit.waitFor").strings() {
        command.extend(["--wait".to_owned(), target]);
    }
    let render: Vec<_> = renders(&init.node.get("args").strings());
    assert_eq!(render.len(), 1);
    command.extend([
        "--render".to_owned(),
        format!("{}={}", render[0].0, render[0].1),
    ]);
    let env = values.path("config.env").string_pairs("env value");
    // The ConfigMap holds the template from the values, mounted where --render reads it.
    let configmap = &templates["configmap.yaml"];
    assert!(configmap.contains(".Values.config.template"));
    let tmp = tempfile::tempdir().unwrap();
    let template_dir = init
        .mounts()
        .into_iter()
        .find(|(n, _)| n == "templates")
        .unwrap()
        .1;
    let file = Path::new(&render[0].0)
        .strip_prefix(&template_dir)
        .expect("--render reads the templates volume");
    std::fs::write(
        tmp.path().join(file),
        values.path("config.template").text("template"),
    )
    .unwrap();
    assert!(
        configmap.contains(&format!("{}:", file.display())),
        "the ConfigMap has no key {}",
        file.display()
    );
    check_init_command(
        "helm: bootstrap-config",
        &image,
        &command,
        &env,
        &[(template_dir, tmp.path().to_path_buf())],
    );
}

// ---------------------------------------------------------------------------------------------
// Docker Compose.

#[test]
fn the_compose_file_starts_the_app_after_the_init_services_completed() {
    let image = dockerfile();
    let compose = &load("deploy/compose.yaml")[0];
    let services = compose.get("services");
    let names: BTreeSet<&str> = services.entries().iter().map(|(k, _)| k.as_str()).collect();
    let volumes: BTreeSet<&str> = compose
        .get("volumes")
        .entries()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    let mounts = |service: &Node| -> Vec<(String, String)> {
        service
            .get("volumes")
            .strings()
            .iter()
            .map(|v| {
                let mut parts = v.split(':');
                (
                    parts.next().unwrap().to_owned(),
                    parts.next().expect("volume:path").to_owned(),
                )
            })
            .collect()
    };
    let our_image = services.path("config-init.image").text("image").to_owned();
    let mut completed = 0;
    for (name, service) in services.entries() {
        for (volume, path) in mounts(service) {
            if !volume.starts_with(['.', '/']) {
                assert!(
                    volumes.contains(volume.as_str()),
                    "{name}: volume {volume:?} is not declared"
                );
            }
            assert!(path.starts_with('/'), "{name}: {path}");
        }
        for (dep, condition) in service.get("depends_on").entries() {
            assert!(
                names.contains(dep.as_str()),
                "{name}: depends_on {dep:?}: no such service"
            );
            let condition = condition.get("condition").text("condition");
            assert!(
                [
                    "service_started",
                    "service_healthy",
                    "service_completed_successfully"
                ]
                .contains(&condition),
                "{name}: {condition}"
            );
            if condition == "service_completed_successfully" {
                completed += 1;
                // What the init service wrote is where the dependent service reads it.
                let theirs = mounts(services.get(dep));
                for (volume, path) in mounts(service) {
                    if let Some((_, their_path)) = theirs.iter().find(|(v, _)| *v == volume) {
                        assert_eq!(
                            &path, their_path,
                            "{name} and {dep} mount {volume:?} at different paths"
                        );
                    }
                }
            }
        }
        if service.get("image").str() != Some(our_image.as_str()) {
            continue;
        }
        let what = format!("compose.yaml: {name}");
        assert_eq!(
            service.get("read_only").str(),
            Some("true"),
            "{what}: read_only"
        );
        assert!(
            service
                .get("cap_drop")
                .strings()
                .contains(&"ALL".to_owned()),
            "{what}: cap_drop"
        );
        let user = service.get("user").text("user");
        assert!(!is_root(user), "{what}: user {user}");
        if let Some(dockerfile) = service.path("build.dockerfile").str() {
            let context = repo()
                .join("deploy")
                .join(service.path("build.context").text("context"));
            assert!(context.join(dockerfile).exists(), "{what}: {dockerfile}");
        }
        let mut command = match service.get("entrypoint") {
            Node::Null => image.entrypoint.clone(),
            entrypoint => entrypoint.strings(),
        };
        command.extend(service.get("command").strings());
        let env = service.get("environment").string_pairs("environment");
        check_init_command(&what, &image, &command, &env, &image.local_copies());
    }
    assert!(
        completed >= 2,
        "the app should wait for the init services to complete"
    );
}
