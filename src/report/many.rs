//! `pathproof pcap FILE... | DIR` without `--json`: one row per capture.

use std::fmt::Write;

/// One capture's row: its verdict, or why it could not be read.
pub struct Row {
    pub file: String,
    /// `Ok((class, place))`, the place being `hop N (address)`, or `Err(message)`.
    pub outcome: Result<(String, String), String>,
    pub exit: u8,
}

/// The table: file, verdict, hop, exit code; errors spelled out below it.
pub fn render(rows: &[Row], skipped: usize) -> String {
    let width = rows
        .iter()
        .map(|r| r.file.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let verdict_width = rows
        .iter()
        .map(|r| r.outcome.as_ref().map_or(5, |(c, _)| c.len()))
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<verdict_width$}  {:<24}  EXIT",
        "FILE", "VERDICT", "HOP"
    );
    let mut errors = Vec::new();
    for r in rows {
        let (class, place) = match &r.outcome {
            Ok((c, p)) => (c.as_str(), p.as_str()),
            Err(e) => {
                errors.push((r.file.as_str(), e.as_str()));
                ("error", "-")
            }
        };
        let _ = writeln!(
            out,
            "{:<width$}  {class:<verdict_width$}  {place:<24}  {}",
            r.file, r.exit
        );
    }
    for (file, e) in errors {
        let _ = writeln!(out, "\n{file}: {e}");
    }
    if skipped > 0 {
        let _ = writeln!(out, "\ninterrupted: {skipped} captures were not analysed");
    }
    out
}

/// The exit code of many: a failure found anywhere (1) first, then a
/// capture that could not be read (2), then inconclusive (3), else 0.
pub fn worst_exit(codes: impl IntoIterator<Item = u8>) -> u8 {
    let severity = |c: u8| match c {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => 0,
    };
    codes.into_iter().max_by_key(|c| severity(*c)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_is_failure_then_error_then_inconclusive() {
        assert_eq!(worst_exit([0, 3, 2, 1, 0]), 1);
        assert_eq!(worst_exit([0, 3, 2]), 2);
        assert_eq!(worst_exit([0, 3]), 3);
        assert_eq!(worst_exit([0, 0]), 0);
        assert_eq!(worst_exit([]), 0);
    }

    #[test]
    fn table_lists_rows_and_errors() {
        let rows = [
            Row {
                file: "a.pcap".into(),
                outcome: Ok(("rst-injected".into(), "hop 2 (198.18.2.2)".into())),
                exit: 1,
            },
            Row {
                file: "bad.pcap".into(),
                outcome: Err("not a capture".into()),
                exit: 2,
            },
        ];
        let t = render(&rows, 0);
        assert!(
            t.lines()
                .nth(1)
                .unwrap()
                .starts_with("a.pcap    rst-injected  hop 2 (198.18.2.2)"),
            "{t}"
        );
        assert!(t.contains("bad.pcap: not a capture"), "{t}");
    }
}
