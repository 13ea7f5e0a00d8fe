//! Command line: clap definitions, turned into jobs.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Find the failing hop between a ZPA App Connector and its cloud, and prove it.
#[derive(Parser, Debug)]
#[command(name = "pathproof", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 no failure found, 1 failure found, \
2 bad input or usage, 3 inconclusive.\nVerdict classes and the JSON schema: see README.md.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse a capture (pcap/pcapng, gzip ok, `-` for stdin): prove which hop sends the resets.
    #[command(
        long_about = "Analyse a capture taken on the connector (e.g. `tcpdump -i any -w \
output.pcap`): TCP handshakes to the broker port, every reset with its TTL, the hop it \
implies and whether it was injected on the way or sent by the broker, unanswered SYNs and \
the ICMP errors that name a hop.\n\nGive the broker's hop count (--hops) or the customer's \
mtr report (--mtr) to place resets on the path and name the hop's address."
    )]
    #[command(
        after_help = "Examples:\n  pathproof pcap output.pcap --mtr mtr.txt\n  \
pathproof pcap output.pcap.gz --hops 6 --json\n  tcpdump -i any -U -w - | pathproof pcap -\n  \
pathproof pcap customer-captures/ --json          # one JSON line per capture\n\n\
Exit codes: 0 no failure found, 1 failure found, 2 bad input or usage, 3 inconclusive."
    )]
    Pcap(PcapArgs),

    /// Trace the path to a target, mtr-style (ICMP, TCP or UDP), and show who really answers.
    #[command(
        long_about = "Trace the path to TARGET with rounds of probes, one per TTL (like mtr), \
and report per hop: loss, RTTs, the addresses that answered, and the TTL of their answers with \
the hop it implies. Then interpret: ICMP rate limiting versus real loss, a protocol blocked \
after a hop, a middlebox answering (RST or SYN-ACK) in the target's name, hops that reject.\n\n\
TCP traces also run an ICMP control trace to the same target in parallel by default \
(--no-control turns it off; --control-icmp adds one to --udp), with half the rounds twice as far apart so that the routers' \
rationed ICMP answers are not doubled: \"TCP stops at hop k while ICMP goes on\" and \"a \
middlebox answers for the target\" are decided by comparing the two.\n\n\
Needs raw sockets (root, or `sudo setcap cap_net_raw+ep $(command -v pathproof)`). Without \
them, --icmp falls back to unprivileged ICMP sockets (net.ipv4.ping_group_range), which see \
less (the report says what)."
    )]
    #[command(
        after_help = "Examples:\n  sudo pathproof trace 198.51.100.7                  \
# TCP/443 + ICMP control, live table\n  sudo pathproof trace broker.example --report -c 20\n  \
pathproof trace 198.51.100.7 --icmp -n --json      # unprivileged fallback if needed\n  \
sudo pathproof trace 198.51.100.7 --save trace.pcap && pathproof pcap trace.pcap\n\n\
Exit codes: 0 no failure found, 1 failure found (a critical finding), 2 bad input, usage or \
missing privilege, 3 inconclusive (the target never answered)."
    )]
    Trace(TraceArgs),

    /// The whole diagnosis from the connector host: DNS, path, TCP, TLS, clock, MTU; one verdict.
    #[command(
        long_about = "Diagnose the connector's way to its brokers, as the connector would go: \
read resolv.conf (and check that the service user can), resolve the broker locator \
co2br.<cloud> (CNAME chain, addresses, rcode), then for each broker address (3 at most, in \
parallel) trace the path (TCP to the port and an ICMP control trace), complete a TLS handshake \
with SNI and record the certificate chain, replay the ClientHello with TTL 1, 2, ... when it is \
reset, search the path MTU with DF probes, and ask the NTP servers for the clock's offset.\n\n\
Every packet of the run is recorded and analysed by the same engine as `pathproof pcap`, so \
the verdict names the failing hop with frame numbers as evidence; --save writes the packets \
(`pathproof pcap FILE --hops N` reaches the same verdict).\n\n\
Needs raw sockets (root, or `sudo setcap cap_net_raw+ep $(command -v pathproof)`); without \
them only DNS, TLS and the clock are checked."
    )]
    #[command(
        after_help = "Examples:\n  sudo pathproof check                          # co2br.prod.zpath.net\n  \
sudo pathproof check --cloud zpatwo.net --json\n  \
sudo pathproof check 198.51.100.7 --sni co2br.prod.zpath.net --save run.pcap\n  \
sudo pathproof check co2br.prod.zpath.net --resolver 192.0.2.53 --ntp 192.0.2.123\n\n\
Exit codes: 0 no failure found, 1 failure found, 2 bad input, usage or missing privilege, \
3 inconclusive."
    )]
    Check(CheckArgs),

    /// Read the connector's journal (`journalctl -u zpa-connector`): timeline, verdict, next steps.
    #[command(
        long_about = "Read a dump of the App Connector's journal (`journalctl -u zpa-connector`, \
in the short, short-precise, short-iso, short-iso-precise or json (`-o json`) format; `-` reads \
stdin) and classify what the connector says: name resolutions and DNS failures, certificates \
not yet valid or expired (its clock), certificates that do not verify (SSL interception, the \
issuer named), its sealed identity that no longer decrypts (cloned VM, changed fingerprint), \
enrollment refusals, the control connection to each broker coming up, failing, backing off, \
redirected, and flapping (cycles and their period), the status block's time skew, \
certificate expiry and data connections. Prints the timeline of state changes with repeats \
counted, one verdict and the next steps.\n\n\
The short formats carry no year: it is --year, else the year of the file's own ISO or JSON \
timestamps, else the current year, plus one each time the month goes backwards (Dec 31 → \
Jan 01). They carry no zone either: --utc-offset gives the connector's local offset; without \
it they are read as UTC (the report says so). Lines that are not recognised are counted; a \
file with no journal line at all is an error (exit 2)."
    )]
    #[command(
        after_help = "Examples:\n  sudo journalctl -u zpa-connector > journal.txt; pathproof journal journal.txt\n  \
sudo journalctl -u zpa-connector -o json | pathproof journal - --json\n  \
pathproof journal messages.txt --year 2026 --utc-offset +02:00\n\n\
Exit codes: 0 healthy, 1 failure found, 2 bad input or usage, 3 inconclusive."
    )]
    Journal(JournalArgs),

    /// Before installing a connector: can this host reach everything it needs? Every check at once.
    #[command(
        long_about = "Validate this network segment for an App Connector before installing \
one: resolv.conf (readable by the service user), DNS of every destination at every resolver \
(A and AAAA over UDP, and TCP 53), then for every address, concurrently: TCP 443, a TLS \
handshake with SNI whose chain must come from the expected issuer (SSL inspection breaks the \
connector, which pins its broker's certificate), DTLS on UDP 443 for brokers, SNTP on UDP 123 \
for time servers (with the clock's offset), and an ICMP echo (informational). With an explicit \
proxy (--proxy, --proxy-file, or /opt/zscaler/var/proxy when it exists): CONNECT through it and \
TLS inside the tunnel, and the direct path for information.\n\n\
Destinations by default, for --cloud CLOUD: the broker locator co2br.CLOUD and every address \
it returns, the enrollment host api.private.zscaler.com, the update hosts \
dist.private.zscaler.com and yum.private.zscaler.com, and the NTP servers (--ntp, or this \
host's chrony, ntpd or timesyncd configuration). --destinations FILE replaces them (format in \
README.md; a `defaults` line keeps them).\n\n\
Each failure on TCP, TLS or UDP is traced to name the hop that drops, resets or intercepts (the \
engine of `check` and `trace`; needs raw sockets, i.e. root or cap_net_raw; --no-trace skips it). \
Prints one row per check (PASS, FAIL, WARN, SKIP), a summary, and the firewall changes that \
would fix the failures."
    )]
    #[command(
        after_help = "Examples:\n  sudo pathproof egress                                  # prod.zpath.net, resolv.conf's resolvers\n  \
sudo pathproof egress --cloud zpatwo.net --resolver 10.0.0.53 --ntp 10.0.0.123\n  \
sudo pathproof egress --proxy 10.1.1.1:3128 --json\n  \
pathproof egress --destinations mylist.txt --no-trace\n\n\
Exit codes: 0 every required check passes, 1 a required check fails, 2 bad input or usage, \
3 nothing could be checked."
    )]
    Egress(EgressArgs),

    /// Print the shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(hide = true)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Write the man pages (pathproof.1, pathproof-pcap.1, ...) into DIR.
    #[command(hide = true)]
    Man {
        /// Directory to write them into (created), e.g. /usr/local/share/man/man1.
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct EgressArgs {
    /// The ZPA cloud whose broker locator (co2br.CLOUD) is checked.
    #[arg(long, value_name = "CLOUD", default_value = "prod.zpath.net")]
    pub cloud: String,

    /// DNS server to check instead of those of resolv.conf (repeatable).
    #[arg(long = "resolver", value_name = "IP")]
    pub resolvers: Vec<std::net::IpAddr>,

    /// The explicit proxy the connector must use, HOST:PORT (default: the connector's proxy
    /// file, when it exists).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["proxy_file", "direct"])]
    pub proxy: Option<String>,

    /// The connector's proxy file (one `host:port` line).
    #[arg(long, value_name = "FILE", default_value = pathproof::egress::proxy::DEFAULT_PROXY_FILE,
          conflicts_with = "direct")]
    pub proxy_file: PathBuf,

    /// No proxy: check the direct path only, whatever the proxy file says.
    #[arg(long)]
    pub direct: bool,

    /// SNTP server, HOST[:PORT] (repeatable; default: the servers of chrony, ntpd or timesyncd).
    #[arg(long = "ntp", value_name = "HOST[:PORT]")]
    pub ntp: Vec<String>,

    /// Destinations to check instead of the defaults (see README.md; `defaults` keeps them).
    #[arg(long, value_name = "FILE")]
    pub destinations: Option<PathBuf>,

    /// Organisation every issuer of each chain must name (an O= value, case-insensitive;
    /// checked by name only); any other issuer is TLS interception.
    #[arg(long, value_name = "ORG", default_value = pathproof::vocab::DEFAULT_ISSUER)]
    pub expect_issuer: String,

    /// CA certificate(s), PEM: each chain must verify up to one of them. Replaces the name check.
    #[arg(long, value_name = "FILE")]
    pub expect_ca: Option<PathBuf>,

    /// The connector's service user, who must be able to read resolv.conf.
    #[arg(long, value_name = "USER", default_value = "zscaler")]
    pub service_user: String,

    /// The resolver configuration to read.
    #[arg(long, value_name = "FILE", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,

    /// Seconds each probe waits (connect, handshake, answer).
    #[arg(long, value_name = "SECS", default_value = "3", value_parser = parse_secs)]
    pub timeout: std::time::Duration,

    /// A blocked UDP 443 (DTLS) fails the run; by default it warns (the connector falls
    /// back to TCP).
    #[arg(long)]
    pub require_udp: bool,

    /// Do not trace failures to name the failing hop.
    #[arg(long)]
    pub no_trace: bool,

    /// Clock offset (seconds) above which the clock is called skewed.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub skew_threshold: std::time::Duration,

    /// Write the packets that prove the verdict (the recording of the trace that placed the
    /// failing hop, each packet commented) to this pcapng; nothing stays when no trace
    /// recorded the verdict's failure.
    #[arg(long, value_name = "FILE.pcapng")]
    pub evidence: Option<PathBuf>,

    /// Write the report as one self-contained HTML page (no network needed to view it).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// Print the JSON report (schema in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct JournalArgs {
    /// The journal dump; `-` reads stdin.
    pub file: PathBuf,

    /// Year of the first year-less timestamp (short and short-precise formats).
    #[arg(long, value_name = "YYYY", value_parser = clap::value_parser!(u16).range(1970..=9999))]
    pub year: Option<u16>,

    /// The connector's local offset from UTC for timestamps without a zone (default: read as UTC).
    #[arg(long, value_name = "+HH:MM", value_parser = parse_offset, allow_hyphen_values = true)]
    pub utc_offset: Option<i32>,

    /// Print the JSON report (schema in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `+HH:MM`, `-HHMM`, `Z` → seconds east of UTC.
fn parse_offset(s: &str) -> Result<i32, String> {
    pathproof::journal::parse_utc_offset(s)
        .ok_or_else(|| format!("`{s}` is not a UTC offset (+HH:MM, -HHMM or Z)"))
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Broker names or addresses (default: the broker locator co2br.<cloud>).
    pub targets: Vec<String>,

    /// The ZPA cloud whose broker locator is checked.
    #[arg(long, value_name = "CLOUD", default_value = "prod.zpath.net")]
    pub cloud: String,

    /// DNS server to ask instead of those of /etc/resolv.conf (repeatable).
    #[arg(long = "resolver", value_name = "IP")]
    pub resolvers: Vec<std::net::IpAddr>,

    /// The connector's service user, who must be able to read /etc/resolv.conf.
    #[arg(long, value_name = "USER", default_value = "zscaler")]
    pub service_user: String,

    /// SNI of the TLS handshake (default: the broker's canonical DNS name; none for an address).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,

    /// Broker port.
    #[arg(short = 'p', long, value_name = "N", default_value_t = 443,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Organisation every issuer of the broker's chain must name (an O= value, case-insensitive;
    /// checked by name only); any other issuer is TLS interception.
    #[arg(long, value_name = "ORG", default_value = pathproof::vocab::DEFAULT_ISSUER)]
    pub expect_issuer: String,

    /// The broker's CA certificate(s), PEM: the chain must verify up to one of them (signatures,
    /// not names; include any intermediate the broker does not send). Replaces the name check.
    #[arg(long, value_name = "FILE")]
    pub expect_ca: Option<PathBuf>,

    /// SNTP server, `host[:port]` (repeatable; default: the servers of chrony, ntpd or timesyncd).
    #[arg(long = "ntp", value_name = "HOST")]
    pub ntp: Vec<String>,

    /// Clock offset (seconds) above which the clock is called skewed.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub skew_threshold: std::time::Duration,

    /// Broker addresses probed at most.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub max_brokers: u8,

    /// Trace rounds per broker.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub count: u32,

    /// Seconds between trace rounds (at least 0.1).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "0.25", value_parser = parse_secs)]
    pub interval: std::time::Duration,

    /// Skip the path-MTU search.
    #[arg(long)]
    pub no_pmtu: bool,

    /// Numeric output: no reverse DNS of hop addresses.
    #[arg(short = 'n', long = "no-dns")]
    pub numeric: bool,

    /// Write every recorded packet of the run to this pcap (Linux cooked capture).
    #[arg(long, value_name = "FILE.pcap")]
    pub save: Option<PathBuf>,

    /// Write only the recorded packets that prove the verdict to this pcapng, each with a
    /// comment saying why it is there and its frame number in the recording.
    #[arg(long, value_name = "FILE.pcapng")]
    pub evidence: Option<PathBuf>,

    /// Write the report as one self-contained HTML page (path diagram, evidence, chain).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Print the JSON report (the `pcap` schema plus a `check` section) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The probe protocol flags (one at most; TCP by default).
#[derive(Args, Debug, Clone, Copy)]
#[group(multiple = false)]
pub struct ProtocolArgs {
    /// TCP SYN probes (the default), to --port (443).
    #[arg(long)]
    pub tcp: bool,
    /// UDP probes, to --port (33434).
    #[arg(long)]
    pub udp: bool,
    /// ICMP echo probes (works without privileges through unprivileged ICMP sockets).
    #[arg(long)]
    pub icmp: bool,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Target: an IP address, or a name resolved once through the system resolver.
    pub target: String,

    #[command(flatten)]
    pub protocol: ProtocolArgs,

    /// Destination port of TCP (default 443) or UDP (default 33434) probes.
    #[arg(short = 'p', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Rounds of probes (one probe per TTL each).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,

    /// Seconds between rounds (at least 0.1).
    #[arg(short = 'i', long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    pub interval: std::time::Duration,

    /// Highest TTL probed (at most 64).
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u8).range(1..=64))]
    pub max_ttl: u8,

    /// Seconds a probe waits for its answer; a later answer counts as lost (default 1).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<std::time::Duration>,

    /// Numeric output: no reverse DNS of hop addresses.
    #[arg(short = 'n', long = "no-dns")]
    pub numeric: bool,

    /// Report mode: no live display, print the table and findings at the end.
    #[arg(long)]
    pub report: bool,

    /// Print the JSON report (schema in README.md) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Write every probe and answer to this pcap (raw IP); the control trace goes to
    /// FILE.icmp-control.pcap. `pathproof pcap` and Wireshark read both.
    #[arg(long, value_name = "FILE.pcap")]
    pub save: Option<PathBuf>,

    /// Run the ICMP control trace also with --udp (TCP traces run it by default).
    #[arg(long, conflicts_with = "no_control")]
    pub control_icmp: bool,

    /// Do not run the ICMP control trace beside a TCP trace.
    #[arg(long)]
    pub no_control: bool,
}

/// Seconds as a decimal number (`0.2`, `1`, `2.5`).
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !x.is_finite() || x <= 0.0 || x > 3600.0 {
        return Err(format!(
            "`{s}`: must be more than 0 and at most 3600 seconds"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(x))
}

#[derive(Args, Debug)]
pub struct PcapArgs {
    /// Capture file(s): pcap or pcapng, optionally gzip-compressed; `-` reads stdin (live: the
    /// verdict on stderr as it changes, the report at the end or at Ctrl-C). Several files or a
    /// directory (the captures in it and below): analysed in parallel, one row (or JSON line) each.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,

    /// FILE is still being written: read on at its end (as `tail -f`) until Ctrl-C or SIGTERM,
    /// with the verdict on stderr as it changes, then the report.
    #[arg(long)]
    pub follow: bool,

    /// The broker's hop count (its traceroute hop, e.g. from mtr's last line).
    #[arg(long, value_name = "N", conflicts_with = "mtr", value_parser = clap::value_parser!(u8).range(1..=255))]
    pub hops: Option<u8>,

    /// The path toward the broker: the customer's mtr report (`mtr -r`/`-rw`/`-rwbzc N` text or
    /// `mtr --json`), or `pathproof trace --json` output.
    #[arg(long, value_name = "FILE")]
    pub mtr: Option<PathBuf>,

    /// Broker port(s) the connector dials; flows to them are judged (repeatable).
    #[arg(long = "port", value_name = "PORT", default_values_t = [443u16])]
    pub ports: Vec<u16>,

    /// Organisation every issuer of the broker's chain must name (an O= value, case-insensitive;
    /// checked by name only); any other issuer is TLS interception.
    #[arg(long, value_name = "ORG", default_value = pathproof::vocab::DEFAULT_ISSUER)]
    pub expect_issuer: String,

    /// The broker's CA certificate(s), PEM: the chain must verify up to one of them (signatures,
    /// not names; include any intermediate the broker does not send). Replaces the name check.
    #[arg(long, value_name = "FILE")]
    pub expect_ca: Option<PathBuf>,

    /// A broker name to look for in DNS, besides co2br.* and *.zpath.net, *.zscaler.net,
    /// *.zscaler.com, *.zpatwo.net (repeatable).
    #[arg(long = "broker-name", value_name = "NAME")]
    pub broker_names: Vec<String>,

    /// The connector's journal (`journalctl -u zpa-connector`, any format of
    /// `pathproof journal`) to judge beside the capture: each logged close,
    /// error or backoff of the control connection is paired with the packet
    /// that ended a connection then, the clock offset between the two is
    /// estimated from them, and the journal's events weigh in the verdict.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// With --journal: the year of its year-less timestamps (default: the capture's).
    #[arg(long, value_name = "YYYY", requires = "journal", value_parser = clap::value_parser!(u16).range(1970..=9999))]
    pub year: Option<u16>,

    /// With --journal: the connector's offset from UTC for timestamps without a zone (default: UTC).
    #[arg(long, value_name = "+HH:MM", requires = "journal", value_parser = parse_offset, allow_hyphen_values = true)]
    pub utc_offset: Option<i32>,

    /// Print the JSON report (schema in README.md) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Write only the packets that prove the verdict to this pcapng, each with a comment
    /// saying why it is there and its frame number in FILE (`pathproof pcap` of it reaches
    /// the same verdict).
    #[arg(long, value_name = "FILE.pcapng")]
    pub evidence: Option<PathBuf>,

    /// Write the report as one self-contained HTML page (path diagram, evidence, chain).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}
