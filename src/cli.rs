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
pathproof pcap output.pcap.gz --hops 6 --json\n  tcpdump -i any -w - | pathproof pcap -\n\n\
Exit codes: 0 no failure found, 1 failure found, 2 bad input or usage, 3 inconclusive."
    )]
    Pcap(PcapArgs),
}

#[derive(Args, Debug)]
pub struct PcapArgs {
    /// Capture file: pcap or pcapng, optionally gzip-compressed; `-` reads stdin.
    pub file: PathBuf,

    /// The broker's hop count (its traceroute hop, e.g. from mtr's last line).
    #[arg(long, value_name = "N", conflicts_with = "mtr", value_parser = clap::value_parser!(u8).range(1..=255))]
    pub hops: Option<u8>,

    /// The customer's mtr report toward the broker: `mtr -r`/`-rw`/`-rwbzc N` text or `mtr --json`.
    #[arg(long, value_name = "FILE")]
    pub mtr: Option<PathBuf>,

    /// Broker port(s) the connector dials; flows to them are judged (repeatable).
    #[arg(long = "port", value_name = "PORT", default_values_t = [443u16])]
    pub ports: Vec<u16>,

    /// Organisation expected in the broker certificate's issuer; any other issuer is TLS interception.
    #[arg(long, value_name = "ORG", default_value = "Zscaler")]
    pub expect_issuer: String,

    /// A broker name to look for in DNS, besides co2br.* and *.zpath.net, *.zscaler.net,
    /// *.zscaler.com, *.zpatwo.net (repeatable).
    #[arg(long = "broker-name", value_name = "NAME")]
    pub broker_names: Vec<String>,

    /// Print the JSON report (schema in README.md) instead of text.
    #[arg(long)]
    pub json: bool,
}
