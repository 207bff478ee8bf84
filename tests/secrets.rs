//! No secret reaches a file or a message (issue 12): every way README documents of giving
//! exp a secret — `api_key_env`, a `secret = true` header filled from `--set`, a literal
//! credential header, a secret-looking variable (fixed and swept), a server command and
//! environment that use them — leaves no trace of its value in anything exp writes or prints,
//! while cells stay distinguishable, and `--resume` takes the secrets back.

mod common;

use std::path::{Path, PathBuf};

use common::{exp, run, walk};

/// Every secret the test passes, and how it is passed.
const SECRETS: [(&str, &str); 6] = [
    ("api_key_env", "sk-env-AAAA1111"),
    ("literal x-api-key header", "sk-literal-BBBB2222"),
    ("secret-looking fixed variable", "hf_fixed_CCCC3333"),
    ("variable read by a secret header", "creds-DDDD4444"),
    ("--set into a secret header", "sk-set-EEEE5555"),
    ("swept secret-looking variable", "kk-sweep-FFFF6666"),
];

const KEY_VAR: &str = "EXP_SECRETS_TEST_KEY";

fn scenario(dir: &Path) -> PathBuf {
    let exe = env!("CARGO_BIN_EXE_exp");
    let text = format!(
        r#"[experiment]
name = "secrets"
description = "Secrets given every documented way."
repetitions = 2
seed = 5

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "exp-fixed"
api_key_env = "{KEY_VAR}"
headers = {{ "Authorization" = {{ value = "Bearer {{{{ token }}}}", secret = true }}, "x-api-key" = "sk-literal-BBBB2222", "X-Extra" = {{ value = "{{{{ creds }}}}", secret = true }}, "X-Team" = "perf" }}

[vars.fixed]
hf_token = "hf_fixed_CCCC3333"
creds = "creds-DDDD4444"
token = "placeholder"
requests = 6
concurrency = 2
prompt_tokens = 8
output_tokens = 4

[vars.sweep]
region_key = ["kk-sweep-FFFF6666", "kk-sweep-GGGG7777"]

[workload]
arrival = "closed"
warmup = 0

[server]
command = ["sh", "-c", "echo starting --api-key {{{{ token }}}} hf={{{{ hf_token }}}} region={{{{ region_key }}}}; exec {exe} serve --fixed ttft=2ms,itl=1ms --port {{{{ port }}}}"]
env = {{ HF_TOKEN = "{{{{ hf_token }}}}" }}
ready_timeout = "60s"
"#
    );
    let path = dir.join("secrets.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every secret found in `text`, by how it was passed.
fn leaks(text: &str) -> Vec<&'static str> {
    let mut found: Vec<&str> = SECRETS
        .iter()
        .filter(|(_, v)| text.contains(v))
        .map(|(how, _)| *how)
        .collect();
    if text.contains("kk-sweep-GGGG7777") {
        found.push("second swept level");
    }
    found
}

fn assert_no_leak(dir: &Path, out: &common::Outcome) {
    for file in walk(dir) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let found = leaks(&text);
        assert!(found.is_empty(), "{} holds {found:?}", file.display());
        let name = file.to_string_lossy();
        assert!(leaks(&name).is_empty(), "a path names a secret: {name}");
    }
    assert!(leaks(&out.stdout).is_empty(), "stdout: {}", out.stdout);
    assert!(leaks(&out.stderr).is_empty(), "stderr: {}", out.stderr);
}

fn run_with_key(args: &[&str]) -> common::Outcome {
    let mut cmd = exp(args);
    cmd.env(KEY_VAR, "sk-env-AAAA1111");
    common::spawn(cmd).wait()
}

#[test]
fn no_secret_reaches_a_file_or_a_message_and_resume_takes_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path());
    let out_dir = tmp.path().join("out");
    let (path_s, out_s) = (path.to_str().unwrap(), out_dir.to_str().unwrap());
    let set = "vars.fixed.token=sk-set-EEEE5555";
    let plan = run_with_key(&["plan", path_s, "--set", set]).expect_code(0);
    assert!(leaks(&plan.stdout).is_empty(), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("--api-key <redacted:"),
        "{}",
        plan.stdout
    );
    let out = run_with_key(&["run", path_s, "--out", out_s, "--no-progress", "--set", set]);
    let out = out.expect_code(0);
    let dir = out.run_dir();
    assert_no_leak(&dir, &out);

    // The server saw them (its log said them), and the log kept markers instead.
    let log = common::text(&dir.join("servers/launch-000.log"));
    assert!(log.contains("starting --api-key <redacted:"), "{log}");
    // Cells that differ only in a secret stay apart, named by their markers.
    let manifest = common::json(&dir.join("manifest.json"));
    let cells = manifest["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    let ids: Vec<&str> = cells.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_ne!(ids[0], ids[1]);
    assert!(
        ids.iter().all(|id| id.starts_with("region_key-redacted-")),
        "{ids:?}"
    );
    assert_eq!(
        manifest["overrides"][0].as_str().unwrap(),
        format!("vars.fixed.token={}", marker("sk-set-EEEE5555"))
    );
    let report = common::text(&dir.join("report.md"));
    assert!(
        report.contains(&format!("`hf_token = {}`", marker("hf_fixed_CCCC3333"))),
        "{report}"
    );

    // Re-reporting and comparing read the markers and add nothing.
    let dir_s = dir.to_str().unwrap();
    let again = run(["report", dir_s]).expect_code(0);
    assert_no_leak(&dir, &again);
    let cmp = run(["compare", dir_s, dir_s]);
    assert_no_leak(&dir, &cmp);

    // Resume needs the secret again, and only the same one.
    let missing = run_with_key(&["run", "--resume", dir_s, "--no-progress"]).expect_code(2);
    assert!(
        missing.stderr.contains(
            "this run was given secrets that a run directory never keeps (`vars.fixed.token`); resume with the same values: `exp run --resume DIR --set vars.fixed.token=…`"
        ),
        "{}",
        missing.stderr
    );
    let wrong = "vars.fixed.token=sk-set-other";
    let wrong = run_with_key(&["run", "--resume", dir_s, "--no-progress", "--set", wrong]);
    assert!(
        wrong
            .expect_code(2)
            .stderr
            .contains("this run was given secrets")
    );
    let resumed = run_with_key(&["run", "--resume", dir_s, "--no-progress", "--set", set]);
    let resumed = resumed.expect_code(0);
    assert_no_leak(&dir, &resumed);
}

/// The marker exp writes for a secret (`<redacted:` + 8 hex digits of its SHA-256 + `>`),
/// computed here independently.
fn marker(value: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(value.as_bytes());
    format!(
        "<redacted:{:02x}{:02x}{:02x}{:02x}>",
        h[0], h[1], h[2], h[3]
    )
}
