//! `/etc/resolv.conf` as glibc reads it, and whether the connector's service
//! user can read it at all.
//!
//! The parser follows glibc's `res_init` rules rather than a generic
//! tokeniser, because the question is "what does the connector's resolver
//! see": keywords and comment characters count only in column 0, at most
//! [`GLIBC_MAXNS`] nameservers are used, `domain` and `search` replace each
//! other (the last one wins), and without any nameserver glibc quietly asks
//! 127.0.0.1, which we report as a flag instead of inventing the address.
//!
//! Readability is computed from the classic owner/group/other mode bits of
//! the file and of every directory on the way to it ([`access_check`], pure),
//! with a thin I/O wrapper ([`readable_by`]) that stats the path and looks
//! the user up. POSIX ACLs are not evaluated: when the file carries one, the
//! verdict says so.

use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// glibc's `MAXNS`: nameserver lines after the third are ignored.
pub const GLIBC_MAXNS: usize = 3;
// glibc's caps on the option values (resolv.h RES_MAXNDOTS, RES_MAXRETRANS,
// RES_MAXRETRY).
const MAX_NDOTS: u32 = 15;
const MAX_TIMEOUT_SECS: u32 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// The resolver configuration that glibc would use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvConf {
    /// The nameservers glibc uses, in order (at most [`GLIBC_MAXNS`]).
    pub nameservers: Vec<IpAddr>,
    /// Valid `nameserver` lines beyond the third, which glibc ignores.
    pub ignored_nameservers: Vec<IpAddr>,
    /// No usable `nameserver` line: glibc then queries 127.0.0.1.
    pub no_nameserver_uses_localhost: bool,
    /// The search list (from the last `search` or `domain` line).
    pub search: Vec<String>,
    pub options: ResolvOptions,
    /// Lines glibc does not understand or cannot use (e.g. a nameserver
    /// that is not an address), kept for the report.
    pub ignored_lines: Vec<String>,
}

/// The `options` that change how long a lookup may take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvOptions {
    pub ndots: u32,
    /// Per-try timeout (`timeout:n`, seconds).
    #[serde(
        rename = "timeout_ms",
        serialize_with = "crate::check::dns::serialize_ms"
    )]
    pub timeout: Duration,
    /// Rounds over all nameservers (`attempts:n`).
    pub attempts: u32,
    /// `rotate`: queries are spread over the nameservers.
    pub rotate: bool,
}

impl Default for ResolvOptions {
    /// glibc's defaults: ndots 1, timeout 5 s, 2 attempts.
    fn default() -> Self {
        ResolvOptions {
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
        }
    }
}

/// A keyword at the start of a line, followed by a blank (glibc's `MATCH`).
fn keyword_rest<'a>(line: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(keyword)?;
    rest.starts_with([' ', '\t']).then_some(rest)
}

/// A nameserver address as glibc takes it: the first token, cut at `;` or
/// `#`, an IPv6 zone (`%eth0`) dropped.
fn nameserver_addr(rest: &str) -> Option<IpAddr> {
    let token = rest.trim_start_matches([' ', '\t']);
    let end = token.find([';', '#', ' ', '\t']).unwrap_or(token.len());
    let token = &token[..end];
    let without_zone = token.split('%').next().unwrap_or(token);
    without_zone.parse().ok()
}

/// An `options` value `name:n`, capped like glibc.
fn option_value(token: &str, name: &str, cap: u32) -> Option<u32> {
    let v: u32 = token.strip_prefix(name)?.strip_prefix(':')?.parse().ok()?;
    Some(v.min(cap))
}

/// Reads resolv.conf text. Never fails: what glibc would skip is skipped
/// (and listed in [`ResolvConf::ignored_lines`]).
pub fn parse(text: &str) -> ResolvConf {
    let mut all_nameservers = Vec::new();
    let mut search = Vec::new();
    let mut options = ResolvOptions::default();
    let mut ignored_lines = Vec::new();

    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(rest) = keyword_rest(line, "nameserver") {
            match nameserver_addr(rest) {
                Some(a) => all_nameservers.push(a),
                None => ignored_lines.push(line.to_string()),
            }
        } else if let Some(rest) = keyword_rest(line, "domain") {
            // `domain` takes only its first word, and replaces the search list.
            search = rest.split_whitespace().take(1).map(String::from).collect();
        } else if let Some(rest) = keyword_rest(line, "search") {
            search = rest.split_whitespace().map(String::from).collect();
        } else if let Some(rest) = keyword_rest(line, "options") {
            for token in rest.split_whitespace() {
                if let Some(v) = option_value(token, "ndots", MAX_NDOTS) {
                    options.ndots = v;
                } else if let Some(v) = option_value(token, "timeout", MAX_TIMEOUT_SECS) {
                    options.timeout = Duration::from_secs(u64::from(v));
                } else if let Some(v) = option_value(token, "attempts", MAX_ATTEMPTS) {
                    options.attempts = v;
                } else if token == "rotate" {
                    options.rotate = true;
                }
                // Other options (edns0, single-request, …) do not change
                // which servers are asked or for how long.
            }
        } else if keyword_rest(line, "sortlist").is_none() {
            ignored_lines.push(line.to_string());
        }
    }

    let ignored_nameservers = all_nameservers.split_off(all_nameservers.len().min(GLIBC_MAXNS));
    ResolvConf {
        no_nameserver_uses_localhost: all_nameservers.is_empty(),
        nameservers: all_nameservers,
        ignored_nameservers,
        search,
        options,
        ignored_lines,
    }
}

// ---------------------------------------------------------------------------
// Readability by the service user
// ---------------------------------------------------------------------------

/// Can the user open the file for reading?
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Readability {
    Readable,
    /// Denied by the mode bits of the file or of a directory above it.
    Unreadable {
        reason: String,
    },
    /// The user does not exist on this host.
    NoSuchUser {
        user: String,
    },
    /// The file or the user could not be examined.
    Unknown {
        reason: String,
    },
}

impl fmt::Display for Readability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readability::Readable => f.write_str("readable"),
            Readability::Unreadable { reason } => write!(f, "not readable: {reason}"),
            Readability::NoSuchUser { user } => write!(f, "no such user: {user}"),
            Readability::Unknown { reason } => write!(f, "readability unknown: {reason}"),
        }
    }
}

/// Owner, group and mode of one path component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathEntry {
    pub path: PathBuf,
    /// `st_mode` (only the permission bits are used).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Names of the owner and group, when known, for the message.
    pub owner_name: Option<String>,
    pub group_name: Option<String>,
    /// The entry carries a POSIX ACL (which this check does not evaluate).
    pub has_acl: bool,
}

/// Who asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserIds {
    pub name: String,
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups (may include the primary one).
    pub groups: Vec<u32>,
}

impl UserIds {
    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

const READ: u32 = 4;
const SEARCH: u32 = 1;

/// The rwx triplet that applies to `user` for `entry`: the owner's if the
/// user owns it, else the group's if they are in the group, else other's
/// (Unix checks exactly one class, no fall-through).
fn applicable_bits(entry: &PathEntry, user: &UserIds) -> u32 {
    if user.uid == entry.uid {
        (entry.mode >> 6) & 7
    } else if user.in_group(entry.gid) {
        (entry.mode >> 3) & 7
    } else {
        entry.mode & 7
    }
}

fn describe_denial(entry: &PathEntry, user: &UserIds, what: &str) -> String {
    let owner = entry
        .owner_name
        .clone()
        .unwrap_or_else(|| entry.uid.to_string());
    let group = entry
        .group_name
        .clone()
        .unwrap_or_else(|| entry.gid.to_string());
    let mut groups: Vec<u32> = std::iter::once(user.gid)
        .chain(user.groups.iter().copied())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut reason = format!(
        "{} is mode {:04o} owner {owner}:{group}; user {} (uid {}, groups {}) has no {what} permission",
        entry.path.display(),
        entry.mode & 0o7777,
        user.name,
        user.uid,
        groups.join(","),
    );
    if entry.has_acl {
        reason.push_str(" (it has a POSIX ACL, which this check does not evaluate)");
    }
    reason
}

/// Pure permission check: `dirs` are the directories that are traversed
/// (each needs search permission, `x`), `file` needs read permission.
/// root (uid 0) passes everything, as with CAP_DAC_OVERRIDE.
pub fn access_check(dirs: &[PathEntry], file: &PathEntry, user: &UserIds) -> Readability {
    if user.uid == 0 {
        return Readability::Readable;
    }
    for dir in dirs {
        if applicable_bits(dir, user) & SEARCH == 0 {
            return Readability::Unreadable {
                reason: describe_denial(dir, user, "search (x)"),
            };
        }
    }
    if applicable_bits(file, user) & READ == 0 {
        return Readability::Unreadable {
            reason: describe_denial(file, user, "read"),
        };
    }
    Readability::Readable
}

/// Directories that are searched to reach `path` (absolute), root first.
fn ancestors_of(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
    dirs.retain(|d| !d.as_os_str().is_empty());
    dirs.reverse();
    dirs
}

fn entry_of(path: &Path) -> std::io::Result<PathEntry> {
    use nix::unistd::{Gid, Group, Uid, User};
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path)?;
    let owner_name = User::from_uid(Uid::from_raw(md.uid()))
        .ok()
        .flatten()
        .map(|u| u.name);
    let group_name = Group::from_gid(Gid::from_raw(md.gid()))
        .ok()
        .flatten()
        .map(|g| g.name);
    Ok(PathEntry {
        path: path.to_path_buf(),
        mode: md.mode(),
        uid: md.uid(),
        gid: md.gid(),
        owner_name,
        group_name,
        // Detecting an ACL needs getxattr(2), which neither std nor our nix
        // features offer; the message then just does not mention it.
        has_acl: false,
    })
}

fn user_ids(user: &str) -> Result<Option<UserIds>, String> {
    use nix::unistd::{User, getgrouplist};
    let Some(u) = User::from_name(user).map_err(|e| format!("looking up user {user}: {e}"))? else {
        return Ok(None);
    };
    let cname = std::ffi::CString::new(user).map_err(|e| format!("user name {user:?}: {e}"))?;
    let groups = getgrouplist(&cname, u.gid)
        .map_err(|e| format!("groups of user {user}: {e}"))?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Ok(Some(UserIds {
        name: user.to_string(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
    }))
}

/// Whether `user` can read `path` (mode bits of the file and of every
/// directory above it; when `path` is a symlink, as /etc/resolv.conf often
/// is, the directories above its target too).
pub fn readable_by(path: &Path, user: &str) -> Readability {
    let ids = match user_ids(user) {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            return Readability::NoSuchUser {
                user: user.to_string(),
            };
        }
        Err(reason) => return Readability::Unknown { reason },
    };
    let absolute = match std::path::absolute(path) {
        Ok(p) => p,
        Err(e) => {
            return Readability::Unknown {
                reason: format!("{}: {e}", path.display()),
            };
        }
    };
    let target = match std::fs::canonicalize(&absolute) {
        Ok(t) => t,
        Err(e) => {
            return Readability::Unknown {
                reason: format!("{}: {e}", path.display()),
            };
        }
    };
    let mut dir_paths = ancestors_of(&absolute);
    for d in ancestors_of(&target) {
        if !dir_paths.contains(&d) {
            dir_paths.push(d);
        }
    }
    let mut dirs = Vec::with_capacity(dir_paths.len());
    for d in &dir_paths {
        match entry_of(d) {
            Ok(e) => dirs.push(e),
            Err(e) => {
                return Readability::Unknown {
                    reason: format!("{}: {e}", d.display()),
                };
            }
        }
    }
    match entry_of(&target) {
        Ok(mut file) => {
            // Name the file as the caller did, with the target if it differs.
            if target != absolute {
                file.path =
                    PathBuf::from(format!("{} (-> {})", absolute.display(), target.display()));
            }
            access_check(&dirs, &file, &ids)
        }
        Err(e) => Readability::Unknown {
            reason: format!("{}: {e}", target.display()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn typical_file() {
        let c = parse(
            "# generated\n; also a comment\nnameserver 198.18.10.2\nnameserver 198.18.10.3 # backup\n\
             search lab1.test example.test\noptions ndots:2 timeout:1 attempts:3 rotate edns0\n",
        );
        assert_eq!(c.nameservers, vec![v4(198, 18, 10, 2), v4(198, 18, 10, 3)]);
        assert!(c.ignored_nameservers.is_empty());
        assert!(!c.no_nameserver_uses_localhost);
        assert_eq!(c.search, vec!["lab1.test", "example.test"]);
        assert_eq!(
            c.options,
            ResolvOptions {
                ndots: 2,
                timeout: Duration::from_secs(1),
                attempts: 3,
                rotate: true
            }
        );
        assert!(c.ignored_lines.is_empty());
    }

    #[test]
    fn defaults_and_localhost_flag_when_empty() {
        let c = parse("");
        assert!(c.nameservers.is_empty());
        assert!(c.no_nameserver_uses_localhost);
        assert_eq!(c.options, ResolvOptions::default());
        assert_eq!(c.options.timeout, Duration::from_secs(5));
        assert_eq!((c.options.ndots, c.options.attempts), (1, 2));
    }

    #[test]
    fn only_three_nameservers_are_used() {
        let c = parse(
            "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n",
        );
        assert_eq!(c.nameservers.len(), 3);
        assert_eq!(c.ignored_nameservers, vec![v4(10, 0, 0, 4)]);
    }

    #[test]
    fn ipv6_with_zone_and_trailing_comment() {
        let c = parse("nameserver fe80::1%eth0\nnameserver 2001:db8::53;x\n");
        assert_eq!(
            c.nameservers,
            vec![
                IpAddr::V6("fe80::1".parse::<Ipv6Addr>().unwrap()),
                IpAddr::V6("2001:db8::53".parse::<Ipv6Addr>().unwrap())
            ]
        );
    }

    #[test]
    fn last_of_domain_and_search_wins() {
        assert_eq!(
            parse("search a.test b.test\ndomain c.test d.test\n").search,
            vec!["c.test"]
        );
        assert_eq!(
            parse("domain c.test\nsearch a.test b.test\n").search,
            vec!["a.test", "b.test"]
        );
    }

    #[test]
    fn garbage_and_indented_lines_are_ignored_like_glibc() {
        let c = parse(
            "nameserver not-an-address\n  nameserver 10.0.0.9\nnameserver10.0.0.8\nhello world\n\
             sortlist 10.0.0.0/8\noptions ndots:99 timeout:x attempts:100\n",
        );
        assert!(c.nameservers.is_empty());
        assert!(c.no_nameserver_uses_localhost);
        assert_eq!(
            c.ignored_lines,
            vec![
                "nameserver not-an-address",
                "  nameserver 10.0.0.9",
                "nameserver10.0.0.8",
                "hello world"
            ]
        );
        // Capped like glibc; the unparsable timeout keeps the default.
        assert_eq!(c.options.ndots, 15);
        assert_eq!(c.options.attempts, 5);
        assert_eq!(c.options.timeout, Duration::from_secs(5));
    }

    #[test]
    fn tabs_separate_keywords_and_crlf_is_tolerated() {
        let c = parse("nameserver\t10.1.1.1\r\nsearch\tx.test\r\n");
        assert_eq!(c.nameservers, vec![v4(10, 1, 1, 1)]);
        assert_eq!(c.search, vec!["x.test"]);
    }

    #[test]
    fn serializes_with_snake_case_and_ms() {
        let j = serde_json::to_value(parse("nameserver 10.0.0.1\n")).unwrap();
        assert_eq!(j["options"]["timeout_ms"], 5000.0);
        assert_eq!(j["no_nameserver_uses_localhost"], false);
        assert_eq!(j["nameservers"][0], "10.0.0.1");
    }

    // --- access_check -----------------------------------------------------

    fn entry(path: &str, mode: u32, uid: u32, gid: u32) -> PathEntry {
        PathEntry {
            path: PathBuf::from(path),
            mode,
            uid,
            gid,
            owner_name: None,
            group_name: None,
            has_acl: false,
        }
    }

    fn zscaler() -> UserIds {
        UserIds {
            name: "zscaler".into(),
            uid: 998,
            gid: 998,
            groups: vec![998, 50],
        }
    }

    fn std_dirs() -> Vec<PathEntry> {
        vec![entry("/", 0o40755, 0, 0), entry("/etc", 0o40755, 0, 0)]
    }

    #[test]
    fn world_readable_file_is_readable() {
        let f = entry("/etc/resolv.conf", 0o100644, 0, 0);
        assert_eq!(
            access_check(&std_dirs(), &f, &zscaler()),
            Readability::Readable
        );
    }

    #[test]
    fn mode_0600_root_owned_is_not_readable_with_a_useful_reason() {
        let mut f = entry("/etc/resolv.conf", 0o100600, 0, 0);
        f.owner_name = Some("root".into());
        f.group_name = Some("root".into());
        let Readability::Unreadable { reason } = access_check(&std_dirs(), &f, &zscaler()) else {
            panic!("expected unreadable");
        };
        assert_eq!(
            reason,
            "/etc/resolv.conf is mode 0600 owner root:root; user zscaler (uid 998, groups 50,998) has no read permission"
        );
    }

    #[test]
    fn group_bits_apply_to_primary_and_supplementary_groups() {
        let f = entry("/etc/resolv.conf", 0o100640, 0, 50);
        assert_eq!(
            access_check(&std_dirs(), &f, &zscaler()),
            Readability::Readable
        );
        let f = entry("/etc/resolv.conf", 0o100640, 0, 998);
        let mut u = zscaler();
        u.groups.clear();
        assert_eq!(access_check(&std_dirs(), &f, &u), Readability::Readable);
        let f = entry("/etc/resolv.conf", 0o100640, 0, 7);
        assert!(matches!(
            access_check(&std_dirs(), &f, &u),
            Readability::Unreadable { .. }
        ));
    }

    #[test]
    fn only_one_class_applies_no_fallthrough() {
        // Owner without read, others with read: the owner is still denied.
        let f = entry("/etc/resolv.conf", 0o100044, 998, 0);
        assert!(matches!(
            access_check(&std_dirs(), &f, &zscaler()),
            Readability::Unreadable { .. }
        ));
        // Group member without group read, others with read: denied too.
        let f = entry("/etc/resolv.conf", 0o100604, 0, 50);
        assert!(matches!(
            access_check(&std_dirs(), &f, &zscaler()),
            Readability::Unreadable { .. }
        ));
        // Owner with read although others have none.
        let f = entry("/etc/resolv.conf", 0o100400, 998, 0);
        assert_eq!(
            access_check(&std_dirs(), &f, &zscaler()),
            Readability::Readable
        );
    }

    #[test]
    fn directory_without_search_permission_blocks() {
        let dirs = vec![entry("/", 0o40755, 0, 0), entry("/etc", 0o40750, 0, 0)];
        let f = entry("/etc/resolv.conf", 0o100644, 0, 0);
        let Readability::Unreadable { reason } = access_check(&dirs, &f, &zscaler()) else {
            panic!("expected unreadable");
        };
        assert!(
            reason.starts_with("/etc is mode 0750 owner 0:0"),
            "{reason}"
        );
        assert!(reason.ends_with("has no search (x) permission"), "{reason}");
        // A directory readable but not searchable is no better.
        let dirs = vec![entry("/", 0o40755, 0, 0), entry("/etc", 0o40744, 0, 0)];
        assert!(matches!(
            access_check(&dirs, &f, &zscaler()),
            Readability::Unreadable { .. }
        ));
        // Search without read on the directory is enough.
        let dirs = vec![entry("/", 0o40711, 0, 0), entry("/etc", 0o40711, 0, 0)];
        assert_eq!(access_check(&dirs, &f, &zscaler()), Readability::Readable);
    }

    #[test]
    fn root_reads_everything() {
        let root = UserIds {
            name: "root".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        let dirs = vec![entry("/", 0o40000, 5, 5)];
        let f = entry("/etc/resolv.conf", 0o100000, 5, 5);
        assert_eq!(access_check(&dirs, &f, &root), Readability::Readable);
    }

    #[test]
    fn acl_is_mentioned() {
        let mut f = entry("/etc/resolv.conf", 0o100600, 0, 0);
        f.has_acl = true;
        let Readability::Unreadable { reason } = access_check(&std_dirs(), &f, &zscaler()) else {
            panic!("expected unreadable");
        };
        assert!(reason.contains("POSIX ACL"), "{reason}");
    }

    #[test]
    fn ancestors_are_root_first() {
        assert_eq!(
            ancestors_of(Path::new("/run/systemd/resolve/stub-resolv.conf")),
            vec![
                PathBuf::from("/"),
                PathBuf::from("/run"),
                PathBuf::from("/run/systemd"),
                PathBuf::from("/run/systemd/resolve")
            ]
        );
    }

    #[test]
    fn io_wrapper_on_real_files() {
        // root exists everywhere and reads everything.
        assert_eq!(
            readable_by(Path::new("/etc/passwd"), "root"),
            Readability::Readable
        );
        assert_eq!(
            readable_by(Path::new("/etc/passwd"), "no-such-user-pathproof"),
            Readability::NoSuchUser {
                user: "no-such-user-pathproof".into()
            }
        );
        assert!(matches!(
            readable_by(Path::new("/nonexistent/pathproof"), "root"),
            Readability::Unknown { .. }
        ));
        // `nobody` (where it exists) cannot read the shadow file (0640/0000).
        if nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .is_some()
            && Path::new("/etc/shadow").exists()
        {
            assert!(matches!(
                readable_by(Path::new("/etc/shadow"), "nobody"),
                Readability::Unreadable { .. }
            ));
        }
    }
}
