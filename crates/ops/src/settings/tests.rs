//! Unit tests of the settings loader: layers, sections, checks,
//! conversions, secrets from files.

use super::*;

pub(super) const MINIMAL: &str = r#"
[cms]
base_url = "https://cms.example.com:8443"
username = "u"
password = "p-secret"
contact_center_id = 1
[[cms.campaigns]]
process_id = 1
campaign_id = 2
lead_ids = [3]
[webex]
base_url = "https://webex.example.com"
api_key = "k-secret"
[zoho]
client_id = "c"
client_secret = "s-secret"
refresh_token = "r-secret"
threshold_ids = ["9"]
"#;

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().copied())
}

fn from_toml(text: &str, e: &[(&str, &str)]) -> Result<Loaded<Settings>, SettingsError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    load(&path, &env(e))
}

#[test]
fn default_toml_plan_section_matches_the_code_defaults() {
    assert_eq!(default_plan(), PlanConfig::default());
}

#[test]
fn plan_lists_come_from_env() {
    let s = from_toml(MINIMAL, &[("REBALANCER_PLAN__FROZEN_AGENTS", "Anna,bob")]).unwrap();
    assert_eq!(s.value.plan.frozen_agents, ["Anna", "bob"]);
}

#[test]
fn a_one_item_list_from_env_is_a_list() {
    let s = from_toml(MINIMAL, &[("REBALANCER_ZOHO__THRESHOLD_IDS", "999")]).unwrap();
    assert_eq!(s.value.zoho.threshold_ids, ["999"]);
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let (s, local) = from_toml(MINIMAL, &[]).unwrap().value.split();
    assert_eq!(s.cms.page_size, 500);
    assert!(s.cms.short_page_ends && s.cms_config(&local.http).short_page_ends);
    assert_eq!(s.zoho.api_version, "v8");
    assert_eq!(s.zoho.per_page, 200);
    assert_eq!(local.fetch.concurrency, 16);
    assert_eq!(local.http.max_retries, 4);
}

#[test]
fn short_page_ends_can_be_turned_off() {
    let s = from_toml(MINIMAL, &[("REBALANCER_CMS__SHORT_PAGE_ENDS", "false")]).unwrap();
    let (s, local) = s.value.split();
    assert!(!s.cms_config(&local.http).short_page_ends);
}

#[test]
fn environment_overrides_file_including_lists() {
    let s = from_toml(
        MINIMAL,
        &[
            ("REBALANCER_CMS__PASSWORD", "from-env"),
            ("REBALANCER_ZOHO__THRESHOLD_IDS", "111,222"),
            ("REBALANCER_FETCH__CONCURRENCY", "3"),
        ],
    )
    .unwrap();
    assert_eq!(s.value.cms.password.expose_secret(), "from-env");
    assert_eq!(s.value.zoho.threshold_ids, ["111", "222"]);
    assert_eq!(s.value.fetch.concurrency, 3);
    assert_eq!(
        s.layers.to_string(),
        "defaults < c.toml < env (3 keys: REBALANCER_CMS__PASSWORD, REBALANCER_FETCH__CONCURRENCY, REBALANCER_ZOHO__THRESHOLD_IDS)",
        "the layers name the file and the variables, never their values"
    );
}

#[test]
fn environment_strings_stay_strings_byte_for_byte() {
    let twenty = "00012345678901234567";
    let s = from_toml(
        MINIMAL,
        &[
            ("REBALANCER_CMS__PASSWORD", "007"),
            ("REBALANCER_WEBEX__API_KEY", twenty),
            ("REBALANCER_CMS__USERNAME", "0x10"),
            ("REBALANCER_ZOHO__CLIENT_ID", "1e3"),
        ],
    )
    .unwrap()
    .value;
    assert_eq!(s.cms.password.expose_secret(), "007");
    assert_eq!(s.webex.api_key.expose_secret(), twenty);
    assert_eq!(s.cms.username, "0x10");
    assert_eq!(s.zoho.client_id, "1e3");
}

#[test]
fn a_bad_environment_value_names_the_variable_not_the_file() {
    let err = from_toml(MINIMAL, &[("REBALANCER_PLAN__MAX_MOVES_PER_RUN", "ten")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("environment variable REBALANCER_PLAN__MAX_MOVES_PER_RUN")
            && err.contains("plan.max_moves_per_run")
            && !err.contains("c.toml"),
        "{err}"
    );
    let err = load_plan(None, &env(&[("REBALANCER_PLAN__MIN_FLOW", "lots")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("REBALANCER_PLAN__MIN_FLOW"), "{err}");
}

#[test]
fn an_unknown_key_from_the_environment_names_the_variable() {
    let err = from_toml(MINIMAL, &[("REBALANCER_CMS__PASWORD", "x")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("REBALANCER_CMS__PASWORD") && err.contains("cms.pasword"),
        "{err}"
    );
    let err = load_plan(None, &env(&[("REBALANCER_PLNA__PINS", "x")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("REBALANCER_PLNA__PINS") && err.contains("unknown section"),
        "{err}"
    );
}

#[test]
fn unrelated_rebalancer_variables_are_not_config() {
    let s = from_toml(
        MINIMAL,
        &[("REBALANCER_VERSION", "1.2.3"), ("REBALANCER_", "x")],
    )
    .unwrap();
    assert!(s.layers.env_vars.is_empty(), "{:?}", s.layers);
}

#[test]
fn plan_only_layering_applies_the_environment() {
    let p = load_plan(None, &env(&[("REBALANCER_PLAN__MAX_MOVES_PER_RUN", "10")])).unwrap();
    assert_eq!(p.value.plan.max_moves_per_run, 10);
    assert_eq!(
        p.layers.to_string(),
        "defaults < env (1 key: REBALANCER_PLAN__MAX_MOVES_PER_RUN)"
    );
    // Connection variables don't matter to an offline replan.
    let p = load_plan(None, &env(&[("REBALANCER_CMS__CONTACT_CENTER_ID", "x")])).unwrap();
    assert!(p.layers.env_vars.is_empty());
}

#[test]
fn a_bad_file_value_names_the_file() {
    let err = from_toml(
        &format!("{MINIMAL}\n[plan]\nmax_moves_per_run = \"ten\"\n"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("c.toml") && err.contains("plan.max_moves_per_run"),
        "{err}"
    );
}

/// The example names its secret files; variables naming other files
/// override those paths (as a systemd unit's `%d/…` does).
#[test]
fn production_example_loads_with_secrets_from_files() {
    let text = include_str!("../../../../config/production.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let mut vars = Vec::new();
    for (key, value) in [
        ("cms.password", "a"),
        ("webex.api_key", "b"),
        ("zoho.client_secret", "c"),
        ("zoho.refresh_token", "d"),
    ] {
        let file = dir.path().join(key);
        std::fs::write(&file, value).unwrap();
        vars.push((env_name(&format!("{key}_file")), file.display().to_string()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = from_toml(text, &vars).unwrap();
    assert_eq!(s.value.cms.campaigns.len(), 2);
    assert_eq!(s.value.zoho.refresh_token.expose_secret(), "d");
    // As shipped, the four files it names are reported at once.
    let err = from_toml(text, &[]).unwrap_err().to_string();
    assert!(err.contains("4 problems"), "{err}");
    for path in [
        "cms-password",
        "webex-api-key",
        "zoho-client-secret",
        "zoho-refresh-token",
    ] {
        assert!(
            err.contains(&format!("/etc/rebalancer/secrets/{path}")),
            "{path}: {err}"
        );
    }
}

#[test]
fn missing_secret_names_key_and_variable() {
    let err = from_toml(&MINIMAL.replace("api_key = \"k-secret\"", ""), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("webex.api_key") && err.contains("REBALANCER_WEBEX__API_KEY"),
        "{err}"
    );
}

#[test]
fn debug_output_hides_secrets() {
    let s = from_toml(MINIMAL, &[]).unwrap();
    let dbg = format!("{s:?}");
    for secret in ["p-secret", "k-secret", "s-secret", "r-secret"] {
        assert!(!dbg.contains(secret), "{secret} in {dbg}");
    }
}

#[test]
fn validation_names_the_key() {
    for (from, to, key) in [
        (
            "lead_ids = [3]",
            "lead_ids = []",
            "cms.campaigns[0].lead_ids",
        ),
        (
            "lead_ids = [3]",
            "lead_ids = [3, 3]",
            "cms.campaigns[0].lead_ids",
        ),
        (
            "threshold_ids = [\"9\"]",
            "threshold_ids = [\"9\"]\nper_page = 500",
            "zoho.per_page",
        ),
        (
            "https://webex.example.com",
            "ftp://webex.example.com",
            "webex.base_url",
        ),
        ("password = \"p-secret\"", "password = \"\"", "cms.password"),
        (
            "threshold_ids = [\"9\"]",
            "threshold_ids = [\"9\", \" \"]",
            "zoho.threshold_ids",
        ),
        (
            "[webex]",
            "[http]\nmax_body_bytes = 0\n[webex]",
            "http.max_body_bytes",
        ),
        (
            "[webex]",
            "[http]\ntimeout_secs = 0\n[webex]",
            "http.timeout_secs",
        ),
        (
            "[webex]",
            "[http]\ntimeout_secs = -5\n[webex]",
            "http.timeout_secs",
        ),
        (
            "[webex]",
            "[fetch]\nconcurrency = 0\n[webex]",
            "fetch.concurrency",
        ),
        (
            "[webex]",
            "[fetch]\ndeadline_secs = 0\n[webex]",
            "fetch.deadline_secs",
        ),
        (
            "[webex]",
            "[fetch]\nmin_webex_coverage = 1.5\n[webex]",
            "fetch.min_webex_coverage",
        ),
        (
            "https://webex.example.com",
            "http://webex.example.com",
            "webex.base_url",
        ),
        (
            "https://cms.example.com:8443",
            "https://u:pw@cms.example.com",
            "cms.base_url",
        ),
        (
            "[webex]",
            "[plan]\nmin_shortfall_gain = nan\n[webex]",
            "plan.min_shortfall_gain",
        ),
        (
            "[webex]",
            "[plan]\ndemand_share = 0.0\n[webex]",
            "plan.demand_share",
        ),
        (
            "[webex]",
            "[plan]\nmin_balance_gain = -1.0\n[webex]",
            "plan.min_balance_gain",
        ),
        (
            "[webex]",
            "[plan]\nmax_moves_per_run = -1\n[webex]",
            "plan.max_moves_per_run",
        ),
    ] {
        let text = MINIMAL.replace(from, to);
        assert_ne!(text, MINIMAL, "{from} not found");
        let err = from_toml(&text, &[]).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains("c.toml"), "{key}: {err}");
    }
}

#[test]
fn plain_http_needs_loopback_or_allow_insecure() {
    let remote = MINIMAL.replace("https://webex.example.com", "http://webex.example.com");
    let err = from_toml(&remote, &[]).unwrap_err().to_string();
    assert!(err.contains("http.allow_insecure"), "{err}");
    let allowed = from_toml(&remote, &[("REBALANCER_HTTP__ALLOW_INSECURE", "true")]).unwrap();
    assert!(allowed.value.http.allow_insecure);
    let local = MINIMAL.replace("https://webex.example.com", "http://127.0.0.1:8080");
    assert!(from_toml(&local, &[]).is_ok());
}

#[test]
fn credentials_in_a_url_are_masked_in_the_error() {
    let text = MINIMAL.replace(
        "https://cms.example.com:8443",
        "https://u:hunter2@cms.example.com",
    );
    let err = from_toml(&text, &[]).unwrap_err().to_string();
    assert!(
        err.contains("cms.base_url") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn identity_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("ids.toml");
    std::fs::write(
        &good,
        "[agents.anav_agent]\nzoho_email = \"Anav@Example.com\"\n",
    )
    .unwrap();
    let map = load_identity_file(&good).unwrap();
    assert_eq!(
        map["anav_agent"].zoho_email.as_deref(),
        Some("Anav@Example.com")
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[agents.x]\nzoho_mail = \"typo\"\n").unwrap();
    let err = load_identity_file(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.toml") && err.contains("zoho_mail"),
        "{err}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = from_toml(&text, &[]);
    }

    #[test]
    fn truncated_config_never_panics(cut in 0usize..400) {
        let cut = MINIMAL.char_indices().map(|(i, _)| i).take_while(|&i| i <= cut).last().unwrap_or(0);
        let _ = from_toml(&MINIMAL[..cut], &[]);
    }

    #[test]
    fn arbitrary_environment_values_never_panic(value in "\\PC{0,40}") {
        let _ = from_toml(MINIMAL, &[("REBALANCER_PLAN__MAX_MOVES_PER_RUN", &value), ("REBALANCER_CMS__PASSWORD", &value)]);
    }
}

#[test]
fn journal_url_selects_postgresql_and_its_password_never_shows() {
    let env = |url: &str| Env::from_pairs([("REBALANCER_JOURNAL__URL", url)]);
    let sqlite =
        load_journal(None, None, &Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
    assert!(
        matches!(sqlite, JournalLocation::Sqlite(ref p) if p.ends_with("rebalancer-journal.sqlite"))
    );
    let url = "postgres://app:hunter2@db:5432/j";
    let pg = load_journal(None, None, &env(url)).unwrap();
    assert!(pg.is_postgres());
    assert_eq!(pg.to_string(), "postgres://app:****@db:5432/j");
    assert!(!format!("{pg:?}").contains("hunter2"));
    let flag = load_journal(Some(PathBuf::from("x.sqlite")), None, &env(url)).unwrap();
    assert!(matches!(flag, JournalLocation::Sqlite(_)));
    let err = load_journal(None, None, &env("mysql://app:hunter2@db/j")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("journal.url"), "{text}");
    assert!(text.contains("REBALANCER_JOURNAL__URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// `MINIMAL` with every inline secret removed.
fn without_inline_secrets() -> String {
    let text = [
        "password = \"p-secret\"\n",
        "api_key = \"k-secret\"\n",
        "client_secret = \"s-secret\"\n",
        "refresh_token = \"r-secret\"\n",
    ]
    .iter()
    .fold(MINIMAL.to_owned(), |t, line| {
        assert!(t.contains(line), "{line}");
        t.replace(line, "")
    });
    text
}

/// `text` as `dir/c.toml`, loaded with `vars`.
fn in_dir(dir: &Path, text: &str, vars: &[(&str, &str)]) -> Result<Settings, String> {
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    load(&path, &env(vars))
        .map(|l| l.value)
        .map_err(|e| e.to_string())
}

#[test]
fn secrets_come_from_files_relative_to_the_config_file_or_absolute_from_the_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/cms"), "p-file\n").unwrap();
    std::fs::write(dir.path().join("secrets/webex"), "k-file\r\n").unwrap();
    std::fs::write(dir.path().join("secrets/zoho-secret"), "s-file").unwrap();
    let token = dir.path().join("secrets/zoho-token");
    std::fs::write(&token, "r-file\n\n").unwrap();
    let text = without_inline_secrets()
        .replace("[cms]\n", "[cms]\npassword_file = \"secrets/cms\"\n")
        .replace("[webex]\n", "[webex]\napi_key_file = \"secrets/webex\"\n")
        .replace(
            "[zoho]\n",
            "[zoho]\nclient_secret_file = \"secrets/zoho-secret\"\n",
        );
    let token = token.to_str().unwrap();
    let s = in_dir(
        dir.path(),
        &text,
        &[("REBALANCER_ZOHO__REFRESH_TOKEN_FILE", token)],
    )
    .unwrap();
    assert_eq!(s.cms.password.expose_secret(), "p-file");
    assert_eq!(s.webex.api_key.expose_secret(), "k-file");
    assert_eq!(s.zoho.client_secret.expose_secret(), "s-file");
    assert_eq!(
        s.zoho.refresh_token.expose_secret(),
        "r-file\n",
        "one trailing newline is dropped, no more"
    );
}

#[test]
fn a_missing_or_empty_secret_file_names_the_key_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let text = without_inline_secrets()
        .replace("[cms]\n", "[cms]\npassword = \"p-secret\"\n")
        .replace("[webex]\n", "[webex]\napi_key_file = \"nowhere/webex\"\n")
        .replace(
            "[zoho]\n",
            "[zoho]\nclient_secret = \"s-secret\"\nrefresh_token_file = \"empty\"\n",
        );
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let err = in_dir(dir.path(), &text, &[]).unwrap_err();
    let webex = dir.path().join("nowhere/webex");
    let empty = dir.path().join("empty");
    assert!(
        err.contains("2 problems")
            && err.contains("`webex.api_key_file`")
            && err.contains(&webex.display().to_string())
            && err.contains("No such file or directory")
            && err.contains("write the secret into it")
            && err.contains("`zoho.refresh_token_file`")
            && err.contains(&format!("{}, which is empty", empty.display())),
        "{err}"
    );
    assert!(!err.contains("-secret"), "{err}");
}

#[test]
fn a_secret_set_inline_and_as_a_file_names_both_origins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cms");
    std::fs::write(&file, "p-file").unwrap();
    let err = in_dir(
        dir.path(),
        MINIMAL,
        &[("REBALANCER_CMS__PASSWORD_FILE", file.to_str().unwrap())],
    )
    .unwrap_err();
    assert!(
        err.contains("`cms.password` is set twice")
            && err.contains(&format!(
                "inline by config file {}",
                dir.path().join("c.toml").display()
            ))
            && err.contains("as a file by environment variable REBALANCER_CMS__PASSWORD_FILE"),
        "{err}"
    );
    assert!(
        !err.contains("p-secret") && !err.contains("p-file"),
        "{err}"
    );
}

#[test]
fn every_missing_required_key_is_reported_in_one_error() {
    let text = MINIMAL
        .replace("username = \"u\"\n", "")
        .replace("api_key = \"k-secret\"\n", "")
        .replace("threshold_ids = [\"9\"]\n", "");
    let err = from_toml(&text, &[]).unwrap_err().to_string();
    for (key, var) in [
        ("cms.username", "REBALANCER_CMS__USERNAME"),
        ("webex.api_key", "REBALANCER_WEBEX__API_KEY"),
        ("zoho.threshold_ids", "REBALANCER_ZOHO__THRESHOLD_IDS"),
    ] {
        assert!(
            err.contains(&format!("`{key}` is missing")) && err.contains(var),
            "{key}: {err}"
        );
    }
    assert!(err.contains("3 problems"), "{err}");
    assert!(
        err.contains("REBALANCER_WEBEX__API_KEY_FILE"),
        "a missing secret names its file form too: {err}"
    );
}

#[test]
fn an_empty_environment_variable_is_an_error_naming_it() {
    let err = from_toml(
        MINIMAL,
        &[
            ("REBALANCER_CMS__USERNAME", ""),
            ("REBALANCER_RUN__METRICS_ADDR", " "),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("environment variable REBALANCER_CMS__USERNAME: key `cms.username` is set but empty; unset REBALANCER_CMS__USERNAME")
            && err.contains("REBALANCER_RUN__METRICS_ADDR"),
        "{err}"
    );
    // Reported with the other problems of the same load.
    let err = from_toml(
        &MINIMAL.replace("threshold_ids = [\"9\"]\n", ""),
        &[("REBALANCER_WEBEX__BASE_URL", "")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("REBALANCER_WEBEX__BASE_URL")
            && err.contains("`zoho.threshold_ids` is missing"),
        "{err}"
    );
    // Whatever the mode: a replan of a snapshot refuses it too.
    let err = load_plan(None, &env(&[("REBALANCER_PLAN__PINS", "")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("REBALANCER_PLAN__PINS"), "{err}");
}

#[test]
fn a_replan_ignores_the_connection_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[cms]\npassword_file = \"missing\"\n").unwrap();
    load_plan(Some(&path), &Env::default()).unwrap();
}

#[test]
fn the_journal_url_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, "postgres://app:hunter2@db:5432/j\n").unwrap();
    let vars = Env::from_pairs([("REBALANCER_JOURNAL__URL_FILE", file.to_str().unwrap())]);
    let pg = load_journal(None, None, &vars).unwrap();
    assert_eq!(pg.to_string(), "postgres://app:****@db:5432/j");
    std::fs::write(&file, "mysql://app:hunter2@db/j").unwrap();
    let err = load_journal(None, None, &vars).unwrap_err().to_string();
    assert!(
        err.contains(&format!("secret file {}", file.display()))
            && err.contains("REBALANCER_JOURNAL__URL_FILE")
            && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn problems_in_several_sections_are_reported_together() {
    let text = format!("{MINIMAL}[http]\ntimeout_secs = 0\n[fetch]\nconcurrency = 0\n");
    let err = from_toml(&text, &[]).unwrap_err().to_string();
    assert!(
        err.contains("2 problems")
            && err.contains("http.timeout_secs")
            && err.contains("fetch.concurrency"),
        "{err}"
    );
}

#[test]
fn metrics_addr_forms() {
    let ok = |t: &str| metrics_addr(t).unwrap().map(|a| a.to_string());
    assert_eq!(ok(""), None);
    assert_eq!(ok("127.0.0.1:9464").as_deref(), Some("127.0.0.1:9464"));
    assert_eq!(ok(":9464").as_deref(), Some("0.0.0.0:9464"));
    assert_eq!(ok("[::1]:9464").as_deref(), Some("[::1]:9464"));
    assert!(ok("localhost:9464").is_some());
    for (bad, says) in [
        ("9464", "no port"),
        ("0.0.0.0:http", "not a number"),
        ("h:70000", "not a number"),
        ("::1:9464", "not a host and a port"),
        ("no-such-host.invalid:9464", "cannot be resolved"),
    ] {
        let e = metrics_addr(bad).unwrap_err();
        assert!(e.contains(says) && e.contains(":9090"), "{bad}: {e}");
    }
}

/// `[run]` is read at load as `run` reads it (`schedule.rs`): `check`
/// and every command refuse a schedule or flap guard `run` would refuse.
#[test]
fn a_broken_run_schedule_or_flap_guard_is_refused_at_load() {
    for (var, value, key, says) in [
        ("REBALANCER_RUN__CRON", "61 * * * *", "run.cron", "cron"),
        ("REBALANCER_RUN__EVERY", "soon", "run.every", "soon"),
        (
            "REBALANCER_RUN__TIMEZONE",
            "Mars/Olympus",
            "run.timezone",
            "Mars",
        ),
        (
            "REBALANCER_RUN__MIN_MOVE_INTERVAL",
            "400d",
            "run.min_move_interval",
            "year",
        ),
    ] {
        let mut env = vec![(var, value)];
        if var == "REBALANCER_RUN__TIMEZONE" {
            env.push(("REBALANCER_RUN__CRON", "0 * * * *"));
        }
        let e = from_toml(MINIMAL, &env).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(says), "{var}={value}: {e}");
        assert!(e.contains(var), "names where it came from: {e}");
    }
    // Both set is refused; neither is fine until `run` needs a schedule.
    let both = [
        ("REBALANCER_RUN__EVERY", "15m"),
        ("REBALANCER_RUN__CRON", "0 * * * *"),
    ];
    let e = from_toml(MINIMAL, &both).unwrap_err().to_string();
    assert!(e.contains("both set"), "{e}");
    from_toml(MINIMAL, &[]).unwrap();
}

#[test]
fn more_than_three_variables_are_counted_and_the_first_three_named() {
    let layers = Layers {
        file: None,
        env_vars: ["A", "B", "C", "D"].map(String::from).to_vec(),
        connection: None,
    };
    assert_eq!(layers.to_string(), "defaults < env (4 keys: A, B, C, …)");
}
