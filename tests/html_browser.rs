//! `--html` in a real browser: Debian's headless chromium loads the page of
//! an injected-reset, an interception and a path-MTU black-hole capture
//! from a file, with every host name mapped to nowhere (no network), and
//! the test checks the rendered DOM: the path's SVG with its hops, the
//! failing hop marked (`data-failing="true"` and the word FAILING), and no
//! external reference. The screenshots stay in `target/test-artifacts/`.
//!
//! Skips with one loud line when chromium is missing, unless
//! `PATHPROOF_LAB_REQUIRED=1` (CI), where that is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| PathBuf::from(name))
    })
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/html");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Flags for a headless chromium that cannot reach anything but the file.
fn offline_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-extensions".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--host-resolver-rules=MAP * ~NOTFOUND".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

struct Case {
    scenario: &'static str,
    /// The failing hop's number, when the evidence places it.
    hop: Option<u8>,
    /// Text the failing mark carries.
    mark: &'static str,
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("PATHPROOF_LAB_REQUIRED").is_none(),
            "chromium is missing and PATHPROOF_LAB_REQUIRED is set (apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED html_report_renders_in_headless_chromium: chromium is not installed (apt-get install --no-install-recommends chromium)"
        );
        return;
    };
    let dir = artifacts();
    let cases = [
        Case {
            scenario: "rst-hop2",
            hop: Some(2),
            mark: "forged reset sent by hop 2",
        },
        Case {
            scenario: "intercept-proxy",
            hop: Some(1),
            mark: "interceptor",
        },
        Case {
            scenario: "pmtu-blackhole",
            hop: None,
            mark: "black hole",
        },
    ];
    for c in &cases {
        let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(format!("{}.sll.pcap", c.scenario));
        let page = dir.join(format!("{}.html", c.scenario));
        let mut args = vec![
            "pcap".to_string(),
            capture.display().to_string(),
            "--html".into(),
            page.display().to_string(),
        ];
        if c.scenario == "rst-hop2" {
            let mtr = capture.with_file_name("rst-hop2.mtr.txt");
            args.extend(["--mtr".into(), mtr.display().to_string()]);
        } else {
            args.extend(["--hops".into(), "4".into()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_pathproof"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", c.scenario);
        let html = std::fs::read_to_string(&page).unwrap();
        let size = html.len();
        assert!(size < 200_000, "{}: page of {size} bytes", c.scenario);

        let profile = dir.join(format!("profile-{}", c.scenario));
        let url = format!("file://{}", page.display());
        let dom = Command::new(&browser)
            .args(offline_args(&profile))
            .args(["--dump-dom", &url])
            .output()
            .unwrap();
        let dom_text = String::from_utf8_lossy(&dom.stdout).to_string();
        std::fs::write(dir.join(format!("{}.dom.html", c.scenario)), &dom_text).unwrap();
        assert!(
            dom_text.contains("<svg id=\"path\""),
            "{}: no path SVG in the DOM\n{}",
            c.scenario,
            String::from_utf8_lossy(&dom.stderr)
        );
        // Every hop of the path is a node.
        for k in 1..=4 {
            assert!(
                dom_text.contains(&format!("data-hop=\"{k}\"")),
                "{}: hop {k} missing",
                c.scenario
            );
        }
        assert!(dom_text.contains("data-failing=\"true\""), "{}", c.scenario);
        assert!(dom_text.contains("FAILING"), "{}", c.scenario);
        assert!(dom_text.contains(c.mark), "{}: {}", c.scenario, c.mark);
        if let Some(h) = c.hop {
            assert!(
                dom_text.contains(&format!(
                    "class=\"hop failing\" data-hop=\"{h}\" data-failing=\"true\""
                )),
                "{}: hop {h} is not the marked one",
                c.scenario
            );
        }
        // Nothing to fetch: no external src or href, no script.
        let lower = dom_text.to_ascii_lowercase();
        for bad in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
            "<script",
            "@import",
        ] {
            assert!(!lower.contains(bad), "{}: found {bad}", c.scenario);
        }
        assert!(lower.contains("wireshark filter"), "{}", c.scenario);
        assert!(lower.contains("next steps"), "{}", c.scenario);

        let shot = dir.join(format!("{}.png", c.scenario));
        let _ = std::fs::remove_file(&shot);
        let s = Command::new(&browser)
            .args(offline_args(&profile))
            .args([
                &format!("--screenshot={}", shot.display()),
                "--window-size=1200,1600",
                &url,
            ])
            .output()
            .unwrap();
        let png = std::fs::read(&shot).unwrap_or_else(|e| {
            panic!(
                "{}: no screenshot ({e}): {}",
                c.scenario,
                String::from_utf8_lossy(&s.stderr)
            )
        });
        assert!(png.starts_with(b"\x89PNG"), "{}", c.scenario);
        eprintln!(
            "html_browser: {}: page {size} bytes, screenshot {}",
            c.scenario,
            shot.display()
        );
        let _ = std::fs::remove_dir_all(&profile);
    }
}
