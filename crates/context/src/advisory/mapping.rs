//! Which ports an advisory puts at risk, and why: the link from "a surge on TCP/1025"
//! to "CVE-2007-1748, the Windows DNS Server RPC overflow, is reached on the dynamic
//! MS-RPC ports".
//!
//! Three routes, strongest first ([`MatchStrength`]):
//!
//! 1. **Explicit**: the source names the port (Exploit-DB's `port` column).
//! 2. **Service**: the advisory is about a product or service whose default ports are
//!    known: a CPE `vendor:product` (NVD), the KEV vendor and product, or the
//!    product's name in the title or description (`OpenSSH`, `Windows DNS Server`,
//!    `Exchange Server`). The table `SERVICES` is written by hand: no crate or
//!    public data set maps CPEs or product names to network ports (CPE names
//!    products, not the services they listen with), so the mapping lives here, one
//!    documented row per product family.
//! 3. **Text**: the description names a protocol or a port: `port 445`, `TCP port
//!    3389`, `UDP port 161`, `via RPC`, `SMBv1`, `RDP`, `DNS`, `NetBIOS`, `HTTP
//!    request`. Matching is on whole words, case-insensitive.
//!
//! Each [`PortMatch`] carries a reason a person can check, such as
//! `cpe microsoft:windows_2000 with 'dns server' in the description → dynamic MS-RPC
//! ports 1025–5000/tcp (Windows DNS Server)`.

use std::collections::HashSet;

use scanwatch_event::Protocol;
use serde::{Deserialize, Serialize, Serializer};

use super::{cpe_vendor_product, Advisory, AdvisorySource};

/// How directly an advisory names a port. Ordered strongest first:
/// `Explicit < Service < Text`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub enum MatchStrength {
    /// The source lists the port.
    Explicit,
    /// The affected product or service listens there by default.
    Service,
    /// The description mentions the port or a protocol that uses it.
    #[default]
    Text,
}

impl MatchStrength {
    /// `explicit`, `service` or `text`.
    pub fn name(self) -> &'static str {
        match self {
            MatchStrength::Explicit => "explicit",
            MatchStrength::Service => "service",
            MatchStrength::Text => "text",
        }
    }
}

/// A port range an advisory is linked to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortMatch {
    /// `None`: TCP and UDP.
    #[serde(serialize_with = "proto_name")]
    pub proto: Option<Protocol>,
    pub first: u16,
    pub last: u16,
    pub strength: MatchStrength,
    pub reason: String,
}

fn proto_name<S: Serializer>(p: &Option<Protocol>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&p.name()),
        None => s.serialize_none(),
    }
}

impl PortMatch {
    /// Whether the match includes `port` over `proto`.
    pub fn covers(&self, proto: Protocol, port: u16) -> bool {
        let proto_ok = match self.proto {
            None => matches!(proto, Protocol::Tcp | Protocol::Udp),
            Some(p) => p == proto,
        };
        proto_ok && self.first <= port && port <= self.last
    }

    /// Whether every (protocol, port) of `other` is also in `self`.
    fn contains(&self, other: &PortMatch) -> bool {
        let proto_ok = self.proto.is_none() || self.proto == other.proto;
        proto_ok && self.first <= other.first && other.last <= self.last
    }
}

/// All ports `adv` is linked to, strongest first, then by port. A match that a
/// stronger (or equally strong, earlier) match already covers is left out.
pub fn port_matches(adv: &Advisory) -> Vec<PortMatch> {
    let view = View::new(adv);
    let mut all = Vec::new();
    explicit(adv, &mut all);
    services(adv, &view, &mut all);
    text(&view, &mut all);
    all.sort_by_key(|m| m.strength);
    let mut kept: Vec<PortMatch> = Vec::with_capacity(all.len());
    for m in all {
        if !kept
            .iter()
            .any(|k| k.strength <= m.strength && k.contains(&m))
        {
            kept.push(m);
        }
    }
    kept.sort_by_key(|m| (m.strength, m.first, m.last, proto_rank(m.proto)));
    kept
}

/// The strongest match of `adv` that covers `port` over `proto`.
pub fn matches_port(adv: &Advisory, proto: Protocol, port: u16) -> Option<PortMatch> {
    port_matches(adv)
        .into_iter()
        .find(|m| m.covers(proto, port))
}

fn proto_rank(p: Option<Protocol>) -> u8 {
    match p {
        Some(Protocol::Tcp) => 0,
        Some(Protocol::Udp) => 1,
        None => 2,
        Some(_) => 3,
    }
}

const TCP: Option<Protocol> = Some(Protocol::Tcp);
const UDP: Option<Protocol> = Some(Protocol::Udp);
/// TCP and UDP.
const BOTH: Option<Protocol> = None;

/// One port range of a table row: protocol, first, last, what it is.
type Ports = &'static [(Option<Protocol>, u16, u16, &'static str)];

fn port_text(proto: Option<Protocol>, first: u16, last: u16) -> String {
    let proto = match proto {
        None => "tcp+udp".into(),
        Some(p) => p.name(),
    };
    if first == last {
        format!("{first}/{proto}")
    } else {
        format!("{first}–{last}/{proto}")
    }
}

fn push_ports(
    out: &mut Vec<PortMatch>,
    ports: Ports,
    strength: MatchStrength,
    why: &str,
    service: Option<&str>,
) {
    for &(proto, first, last, label) in ports {
        let mut reason = format!("{why} → {label} {}", port_text(proto, first, last));
        if let Some(s) = service {
            reason.push_str(&format!(" ({s})"));
        }
        out.push(PortMatch {
            proto,
            first,
            last,
            strength,
            reason,
        });
    }
}

// ---------------------------------------------------------------------------------
// Route 1: explicit ports.

fn explicit(adv: &Advisory, out: &mut Vec<PortMatch>) {
    let who = match adv.source {
        AdvisorySource::ExploitDb => "Exploit-DB",
        AdvisorySource::Nvd => "NVD",
        AdvisorySource::Kev => "CISA KEV",
        AdvisorySource::Csaf => "the vendor's CSAF advisory",
    };
    let mut seen = Vec::new();
    for &p in &adv.ports {
        if p == 0 || seen.contains(&p) {
            continue;
        }
        seen.push(p);
        out.push(PortMatch {
            proto: None,
            first: p,
            last: p,
            strength: MatchStrength::Explicit,
            reason: format!("{who} lists port {p}"),
        });
    }
}

// ---------------------------------------------------------------------------------
// Text view of an advisory: lowercase words separated by single spaces, with a space
// at each end, so that " phrase " finds a phrase on word boundaries.

/// Lowercase words of `s` (letters and digits), each followed and preceded by one space.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(' ');
    let mut gap = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            gap = false;
        } else if !gap {
            out.push(' ');
            gap = true;
        }
    }
    if !gap {
        out.push(' ');
    }
    out
}

/// Whether normalized `text` holds `phrase` (lowercase words separated by single
/// spaces) as whole words; a plural `s` on the last word counts too.
fn has_phrase(text: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return false;
    }
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].ends_with(' ');
        let after = &text[i + phrase.len()..];
        before && (after.starts_with(' ') || after.starts_with("s "))
    })
}

struct View<'a> {
    adv: &'a Advisory,
    /// Every word of the description, title and product, also without a plural `s`:
    /// a phrase whose first word is not here cannot match.
    words: HashSet<String>,
    description: String,
    title: String,
    product: String,
    vendor: String,
    cpes: Vec<(String, String)>,
    /// The advisory is about Microsoft software.
    microsoft: bool,
}

impl<'a> View<'a> {
    fn new(adv: &'a Advisory) -> Self {
        let cpes: Vec<(String, String)> = adv
            .cpes
            .iter()
            .filter_map(|c| cpe_vendor_product(c))
            .map(|(v, p)| (v.to_lowercase(), p.to_lowercase()))
            .collect();
        let description = normalize(&adv.description);
        let title = normalize(&adv.title);
        let vendor = normalize(adv.vendor.as_deref().unwrap_or_default());
        let product = normalize(adv.product.as_deref().unwrap_or_default());
        let mut words = HashSet::new();
        for w in [&description, &title, &product]
            .iter()
            .flat_map(|t| t.split_whitespace())
        {
            if let Some(singular) = w.strip_suffix('s') {
                words.insert(singular.to_string());
            }
            words.insert(w.to_string());
        }
        let microsoft = vendor == " microsoft "
            || cpes.iter().any(|(v, _)| v == "microsoft")
            || [&description, &title]
                .iter()
                .any(|t| has_phrase(t, "microsoft") || has_phrase(t, "windows"));
        View {
            adv,
            words,
            description,
            title,
            product,
            vendor,
            cpes,
            microsoft,
        }
    }

    /// Where `phrase` occurs: in the description, the title or the product name.
    fn find_words(&self, phrase: &str) -> Option<&'static str> {
        let first = phrase.split(' ').next().unwrap_or_default();
        if !self.words.contains(first) {
            None
        } else if has_phrase(&self.description, phrase) {
            Some("in the description")
        } else if has_phrase(&self.title, phrase) {
            Some("in the title")
        } else if has_phrase(&self.product, phrase) {
            Some("in the product name")
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------
// Route 2: services.

/// One condition of a service trigger.
#[derive(Clone, Copy, Debug)]
enum Cond {
    /// A CPE with this vendor and product; a product ending in `*` is a prefix.
    Cpe(&'static str, &'static str),
    /// The KEV vendor (as lowercase words) or a CPE vendor is this.
    Vendor(&'static str),
    /// The KEV product (or NVD first CPE product) holds these words.
    Product(&'static str),
    /// The description or title holds these words.
    Words(&'static str),
}

use Cond::{Cpe, Product, Vendor, Words};

/// A product family and the ports it listens on by default.
struct Service {
    name: &'static str,
    /// Alternatives; each is a list of conditions that must all hold.
    triggers: &'static [&'static [Cond]],
    ports: Ports,
}

/// How one condition holds, for the reason.
enum Held {
    /// `cpe microsoft:windows_2000`, `vendor Microsoft`, `product 'SMBv1'`.
    Field(String),
    /// A phrase and where it is (`in the description`).
    Words(&'static str, &'static str),
}

impl Cond {
    /// How the condition holds for `v`, or `None`.
    fn check(self, v: &View<'_>) -> Option<Held> {
        match self {
            Cpe(vendor, product) => {
                let (pv, pp) = v.cpes.iter().find(|(cv, cp)| {
                    cv == vendor
                        && match product.strip_suffix('*') {
                            Some(prefix) => cp.starts_with(prefix),
                            None => cp == product,
                        }
                })?;
                Some(Held::Field(format!("cpe {pv}:{pp}")))
            }
            Vendor(name) => {
                if v.vendor.trim() == name {
                    let shown = v.adv.vendor.as_deref().unwrap_or(name);
                    Some(Held::Field(format!("vendor {shown}")))
                } else {
                    v.cpes
                        .iter()
                        .any(|(cv, _)| cv == name)
                        .then(|| Held::Field(format!("cpe vendor {name}")))
                }
            }
            Product(words) => has_phrase(&v.product, words).then(|| {
                let shown = v.adv.product.as_deref().unwrap_or(words);
                Held::Field(format!("product '{shown}'"))
            }),
            Words(words) => v.find_words(words).map(|at| Held::Words(words, at)),
        }
    }
}

/// `cpe microsoft:windows_2000 with 'dns server' in the description`,
/// `'windows' and 'dns rpc' in the description`.
fn render(held: &[Held]) -> String {
    let mut parts: Vec<String> = held
        .iter()
        .filter_map(|h| match h {
            Held::Field(f) => Some(f.clone()),
            Held::Words(..) => None,
        })
        .collect();
    let mut places: Vec<(&str, Vec<&str>)> = Vec::new();
    for h in held {
        if let Held::Words(w, at) = h {
            match places.iter_mut().find(|(p, _)| p == at) {
                Some((_, ws)) => ws.push(w),
                None => places.push((at, vec![w])),
            }
        }
    }
    let words: Vec<String> = places
        .iter()
        .map(|(at, ws)| {
            let quoted: Vec<String> = ws.iter().map(|w| format!("'{w}'")).collect();
            format!("{} {at}", quoted.join(" and "))
        })
        .collect();
    if !words.is_empty() {
        parts.push(words.join(" and "));
    }
    parts.join(" with ")
}

/// MS-RPC: the endpoint mapper, then the dynamic ports RPC services are given
/// (1025–5000 up to Windows 2000/XP/2003, 49152–65535 from Vista/2008 on).
const MSRPC_PORTS: Ports = &[
    (TCP, 135, 135, "MS-RPC endpoint mapper"),
    (TCP, 1025, 5000, "dynamic MS-RPC ports"),
    (TCP, 49152, 65535, "dynamic MS-RPC ports"),
];
const SMB_PORTS: Ports = &[
    (TCP, 445, 445, "SMB"),
    (TCP, 139, 139, "NetBIOS session service"),
];
const WEB_PORTS: Ports = &[(TCP, 80, 80, "HTTP"), (TCP, 443, 443, "HTTPS")];
const HTTPS: Ports = &[(TCP, 443, 443, "HTTPS")];

/// Products and services to their default ports, most specific first. Written by
/// hand (see the module documentation); add a row with the product's CPE
/// `vendor:product`, the words that name it, and its IANA-registered or
/// vendor-documented default ports.
static SERVICES: &[Service] = &[
    Service {
        name: "Windows DNS Server",
        triggers: &[
            &[Cpe("microsoft", "windows*"), Words("dns server")],
            &[
                Cpe("microsoft", "windows*"),
                Words("domain name system server"),
            ],
            &[Vendor("microsoft"), Words("dns server")],
            &[Words("windows dns server")],
            &[Words("microsoft dns")],
            &[Words("windows"), Words("dns rpc")],
            &[Words("dnssrvquery")],
        ],
        ports: &[
            (TCP, 135, 135, "MS-RPC endpoint mapper"),
            (TCP, 1025, 5000, "dynamic MS-RPC ports"),
            (TCP, 49152, 65535, "dynamic MS-RPC ports"),
            (BOTH, 53, 53, "DNS"),
        ],
    },
    Service {
        name: "Microsoft SMB server",
        triggers: &[
            &[Cpe("microsoft", "server_message_block")],
            &[Vendor("microsoft"), Product("smbv1")],
            &[Vendor("microsoft"), Product("smbv2")],
            &[Vendor("microsoft"), Product("smbv3")],
            &[Vendor("microsoft"), Product("smb")],
            &[Words("server message block")],
            &[Words("srv sys")],
            &[Words("srv2 sys")],
            &[Words("eternalblue")],
            &[Words("eternalromance")],
            &[Words("eternalsynergy")],
            &[Words("eternalchampion")],
            &[Words("smbghost")],
            &[Words("ms17 010")],
        ],
        ports: SMB_PORTS,
    },
    Service {
        name: "Microsoft Remote Desktop Services",
        triggers: &[
            &[Cpe("microsoft", "remote_desktop*")],
            &[Vendor("microsoft"), Product("remote desktop")],
            &[Words("remote desktop services")],
            &[Words("remote desktop protocol")],
            &[Words("remote desktop gateway")],
            &[Words("terminal services")],
            &[Words("terminal service")],
            &[Words("bluekeep")],
        ],
        ports: &[(BOTH, 3389, 3389, "RDP")],
    },
    Service {
        name: "Windows RPC (RPCSS, DCOM)",
        triggers: &[
            &[Words("rpc dcom")],
            &[Words("dcom rpc")],
            &[Words("rpcss")],
            &[Words("endpoint mapper")],
            &[Words("msrpc")],
        ],
        ports: MSRPC_PORTS,
    },
    Service {
        name: "Windows Netlogon",
        triggers: &[
            &[Vendor("microsoft"), Product("netlogon")],
            &[Words("netlogon")],
            &[Words("zerologon")],
        ],
        ports: &[
            (TCP, 135, 135, "MS-RPC endpoint mapper"),
            (TCP, 49152, 65535, "dynamic MS-RPC ports (Netlogon RPC)"),
            (TCP, 445, 445, "SMB (netlogon named pipe)"),
        ],
    },
    Service {
        name: "Windows Print Spooler",
        triggers: &[&[Words("print spooler")], &[Words("printnightmare")]],
        ports: &[
            (TCP, 445, 445, "SMB (spoolss named pipe)"),
            (TCP, 135, 135, "MS-RPC endpoint mapper"),
        ],
    },
    Service {
        name: "Windows LSASS",
        triggers: &[&[Words("lsasrv")], &[Words("lsass")], &[Words("lsarpc")]],
        ports: SMB_PORTS,
    },
    Service {
        name: "Windows Server and Workstation services",
        triggers: &[
            &[Words("netapi32")],
            &[Words("wkssvc")],
            &[Words("srvsvc")],
            &[Words("workstation service")],
            &[Words("netpwpathcanonicalize")],
            &[Words("netpisremote")],
            &[Words("netpmanageipcconnect")],
            &[Words("ms08 067")],
        ],
        ports: SMB_PORTS,
    },
    Service {
        name: "Windows Internet Name Service (WINS)",
        triggers: &[
            &[Words("windows internet name service")],
            &[Words("microsoft"), Words("wins")],
            &[Words("windows"), Words("wins")],
        ],
        ports: &[
            (TCP, 42, 42, "WINS replication"),
            (UDP, 137, 137, "NetBIOS name service"),
        ],
    },
    Service {
        name: "Microsoft Message Queuing (MSMQ)",
        triggers: &[
            &[Words("message queuing")],
            &[Words("msmq")],
            &[Words("queuejumper")],
        ],
        ports: &[
            (TCP, 1801, 1801, "MSMQ"),
            (TCP, 2103, 2103, "MSMQ RPC"),
            (TCP, 2105, 2105, "MSMQ RPC"),
            (TCP, 2107, 2107, "MSMQ RPC"),
            (UDP, 3527, 3527, "MSMQ ping"),
        ],
    },
    Service {
        name: "Windows Remote Management (WinRM)",
        triggers: &[&[Words("winrm")], &[Words("windows remote management")]],
        ports: &[
            (TCP, 5985, 5985, "WinRM HTTP"),
            (TCP, 5986, 5986, "WinRM HTTPS"),
        ],
    },
    Service {
        name: "Microsoft SQL Server",
        triggers: &[
            &[Cpe("microsoft", "sql_server*")],
            &[Vendor("microsoft"), Product("sql server")],
            &[Words("microsoft sql server")],
            &[Words("mssql")],
        ],
        ports: &[
            (TCP, 1433, 1433, "MS SQL"),
            (UDP, 1434, 1434, "SQL Server Browser"),
        ],
    },
    Service {
        name: "Microsoft Exchange Server",
        triggers: &[
            &[Cpe("microsoft", "exchange_server*")],
            &[Vendor("microsoft"), Product("exchange server")],
            &[Words("microsoft exchange")],
            &[Words("exchange server")],
            &[Words("outlook web access")],
            &[Words("proxylogon")],
            &[Words("proxyshell")],
        ],
        ports: &[
            (TCP, 443, 443, "HTTPS (OWA, ECP, Autodiscover)"),
            (TCP, 25, 25, "SMTP"),
        ],
    },
    Service {
        name: "Microsoft IIS and HTTP.sys",
        triggers: &[
            &[Cpe("microsoft", "internet_information_serv*")],
            &[Cpe("microsoft", "iis")],
            &[Words("internet information services")],
            &[Words("internet information server")],
            &[Words("iis")],
            &[Words("http sys")],
        ],
        ports: WEB_PORTS,
    },
    Service {
        name: "Microsoft SharePoint",
        triggers: &[&[Cpe("microsoft", "sharepoint*")], &[Words("sharepoint")]],
        ports: WEB_PORTS,
    },
    Service {
        name: "Samba",
        triggers: &[&[Cpe("samba", "samba")], &[Words("samba")]],
        ports: SMB_PORTS,
    },
    Service {
        name: "NetBIOS name service",
        triggers: &[
            &[Words("netbios name service")],
            &[Words("nbns")],
            &[Words("netbios session service")],
        ],
        ports: &[
            (UDP, 137, 137, "NetBIOS name service"),
            (UDP, 138, 138, "NetBIOS datagram service"),
            (TCP, 139, 139, "NetBIOS session service"),
        ],
    },
    Service {
        name: "Kerberos KDC",
        triggers: &[
            &[Cpe("mit", "kerberos*")],
            &[Words("key distribution center")],
            &[Words("kdc")],
            &[Words("krb5kdc")],
            &[Words("heimdal")],
        ],
        ports: &[(BOTH, 88, 88, "Kerberos")],
    },
    Service {
        name: "LDAP directory servers",
        triggers: &[
            &[Cpe("openldap", "openldap")],
            &[Words("openldap")],
            &[Words("slapd")],
            &[Words("ldap server")],
            &[Words("ldap service")],
        ],
        ports: &[(BOTH, 389, 389, "LDAP"), (TCP, 636, 636, "LDAPS")],
    },
    Service {
        name: "OpenSSH",
        triggers: &[
            &[Cpe("openbsd", "openssh")],
            &[Words("openssh")],
            &[Words("sshd")],
        ],
        ports: &[(TCP, 22, 22, "SSH")],
    },
    Service {
        name: "SSH servers",
        triggers: &[
            &[Cpe("libssh", "libssh")],
            &[Cpe("dropbear_ssh_project", "dropbear_ssh")],
            &[Words("libssh")],
            &[Words("dropbear")],
            &[Words("ssh server")],
        ],
        ports: &[(TCP, 22, 22, "SSH")],
    },
    Service {
        name: "Telnet servers",
        triggers: &[
            &[Words("telnetd")],
            &[Words("telnet server")],
            &[Words("telnet service")],
            &[Words("telnet daemon")],
        ],
        ports: &[(TCP, 23, 23, "Telnet")],
    },
    Service {
        name: "BSD r-services",
        triggers: &[
            &[Words("rshd")],
            &[Words("rsh daemon")],
            &[Words("rlogind")],
            &[Words("rexecd")],
        ],
        ports: &[
            (TCP, 512, 512, "rexec"),
            (TCP, 513, 513, "rlogin"),
            (TCP, 514, 514, "rsh"),
        ],
    },
    Service {
        name: "FTP servers",
        triggers: &[
            &[Cpe("beasts", "vsftpd")],
            &[Cpe("proftpd", "proftpd")],
            &[Words("vsftpd")],
            &[Words("proftpd")],
            &[Words("pure ftpd")],
            &[Words("filezilla server")],
            &[Words("serv u")],
            &[Words("ftp server")],
            &[Words("ftpd")],
        ],
        ports: &[(TCP, 21, 21, "FTP")],
    },
    Service {
        name: "TFTP servers",
        triggers: &[&[Words("tftp server")], &[Words("tftpd")]],
        ports: &[(UDP, 69, 69, "TFTP")],
    },
    Service {
        name: "SMTP servers",
        triggers: &[
            &[Cpe("exim", "exim")],
            &[Words("exim")],
            &[Words("sendmail")],
            &[Words("postfix")],
            &[Words("opensmtpd")],
            &[Words("smtp server")],
            &[Words("mail transfer agent")],
        ],
        ports: &[
            (TCP, 25, 25, "SMTP"),
            (TCP, 465, 465, "SMTPS"),
            (TCP, 587, 587, "SMTP submission"),
        ],
    },
    Service {
        name: "IMAP and POP3 servers",
        triggers: &[
            &[Words("dovecot")],
            &[Words("imap server")],
            &[Words("imapd")],
            &[Words("pop3 server")],
            &[Words("cyrus imap")],
        ],
        ports: &[
            (TCP, 143, 143, "IMAP"),
            (TCP, 993, 993, "IMAPS"),
            (TCP, 110, 110, "POP3"),
            (TCP, 995, 995, "POP3S"),
        ],
    },
    Service {
        name: "Apache HTTP Server",
        triggers: &[
            &[Cpe("apache", "http_server")],
            &[Vendor("apache"), Product("http server")],
            &[Words("apache http server")],
            &[Words("apache httpd")],
        ],
        ports: WEB_PORTS,
    },
    Service {
        name: "nginx",
        triggers: &[
            &[Cpe("f5", "nginx*")],
            &[Cpe("nginx", "nginx*")],
            &[Words("nginx")],
        ],
        ports: WEB_PORTS,
    },
    Service {
        name: "Apache Tomcat",
        triggers: &[&[Cpe("apache", "tomcat")], &[Words("tomcat")]],
        ports: &[
            (TCP, 8080, 8080, "HTTP (Tomcat)"),
            (TCP, 8009, 8009, "AJP"),
            (TCP, 8443, 8443, "HTTPS (Tomcat)"),
        ],
    },
    Service {
        name: "Oracle WebLogic Server",
        triggers: &[&[Cpe("oracle", "weblogic_server")], &[Words("weblogic")]],
        ports: &[
            (TCP, 7001, 7001, "WebLogic HTTP/T3/IIOP"),
            (TCP, 7002, 7002, "WebLogic HTTPS"),
        ],
    },
    Service {
        name: "Atlassian Confluence",
        triggers: &[&[Cpe("atlassian", "confluence*")], &[Words("confluence")]],
        ports: &[
            (TCP, 8090, 8090, "Confluence HTTP"),
            (TCP, 443, 443, "HTTPS (reverse proxy)"),
        ],
    },
    Service {
        name: "Atlassian Jira",
        triggers: &[&[Cpe("atlassian", "jira*")], &[Words("jira")]],
        ports: &[
            (TCP, 8080, 8080, "Jira HTTP"),
            (TCP, 443, 443, "HTTPS (reverse proxy)"),
        ],
    },
    Service {
        name: "Jenkins",
        triggers: &[&[Cpe("jenkins", "jenkins")], &[Words("jenkins")]],
        ports: &[
            (TCP, 8080, 8080, "Jenkins HTTP"),
            (TCP, 50000, 50000, "Jenkins agent port"),
        ],
    },
    Service {
        name: "Telerik UI for ASP.NET AJAX and ASP.NET web applications",
        triggers: &[
            &[Cpe("telerik", "*")],
            &[Cpe("progress", "telerik*")],
            &[Words("telerik")],
            &[Words("asp net")],
        ],
        ports: WEB_PORTS,
    },
    Service {
        name: "Citrix ADC and Gateway (NetScaler)",
        triggers: &[
            &[Cpe("citrix", "application_delivery_controller*")],
            &[Cpe("citrix", "netscaler*")],
            &[Cpe("citrix", "gateway*")],
            &[Words("netscaler")],
            &[Words("citrix adc")],
            &[Words("citrix gateway")],
            &[Words("citrix application delivery controller")],
        ],
        ports: HTTPS,
    },
    Service {
        name: "Fortinet FortiOS and FortiProxy SSL-VPN",
        triggers: &[
            &[Cpe("fortinet", "fortios*")],
            &[Cpe("fortinet", "fortiproxy*")],
            &[Words("fortios")],
            &[Words("fortigate")],
            &[Words("fortiproxy")],
        ],
        ports: &[
            (TCP, 443, 443, "HTTPS (SSL-VPN, admin)"),
            (TCP, 10443, 10443, "SSL-VPN (common alternative)"),
        ],
    },
    Service {
        name: "Pulse Secure / Ivanti Connect Secure",
        triggers: &[
            &[Cpe("pulsesecure", "pulse_connect_secure")],
            &[Cpe("ivanti", "connect_secure")],
            &[Words("pulse connect secure")],
            &[Words("pulse secure")],
            &[Words("ivanti connect secure")],
        ],
        ports: HTTPS,
    },
    Service {
        name: "Palo Alto Networks PAN-OS GlobalProtect",
        triggers: &[
            &[Cpe("paloaltonetworks", "pan_os")],
            &[Words("pan os")],
            &[Words("globalprotect")],
        ],
        ports: HTTPS,
    },
    Service {
        name: "Cisco ASA and FTD web services",
        triggers: &[
            &[Cpe("cisco", "adaptive_security_appliance*")],
            &[Cpe("cisco", "firepower_threat_defense*")],
            &[Words("cisco asa")],
            &[Words("adaptive security appliance")],
        ],
        ports: HTTPS,
    },
    Service {
        name: "F5 BIG-IP management",
        triggers: &[&[Cpe("f5", "big_ip*")], &[Words("big ip")]],
        ports: HTTPS,
    },
    Service {
        name: "SonicWall SSL-VPN and SMA",
        triggers: &[&[Cpe("sonicwall", "*")], &[Words("sonicwall")]],
        ports: HTTPS,
    },
    Service {
        name: "VMware vCenter Server",
        triggers: &[&[Cpe("vmware", "vcenter_server*")], &[Words("vcenter")]],
        ports: HTTPS,
    },
    Service {
        name: "OpenSLP (VMware ESXi)",
        triggers: &[&[Words("openslp")], &[Words("service location protocol")]],
        ports: &[(BOTH, 427, 427, "SLP")],
    },
    Service {
        name: "Zimbra Collaboration",
        triggers: &[
            &[Cpe("zimbra", "*")],
            &[Cpe("synacor", "zimbra*")],
            &[Words("zimbra")],
        ],
        ports: &[
            (TCP, 443, 443, "HTTPS (webmail)"),
            (TCP, 7071, 7071, "Zimbra admin console"),
        ],
    },
    Service {
        name: "Webmin",
        triggers: &[&[Cpe("webmin", "webmin")], &[Words("webmin")]],
        ports: &[(TCP, 10000, 10000, "Webmin")],
    },
    Service {
        name: "Redis",
        triggers: &[
            &[Cpe("redis", "redis")],
            &[Cpe("redislabs", "redis")],
            &[Words("redis")],
        ],
        ports: &[(TCP, 6379, 6379, "Redis")],
    },
    Service {
        name: "MySQL and MariaDB",
        triggers: &[
            &[Cpe("oracle", "mysql*")],
            &[Cpe("mysql", "mysql*")],
            &[Cpe("mariadb", "mariadb")],
            &[Words("mysql")],
            &[Words("mariadb")],
        ],
        ports: &[(TCP, 3306, 3306, "MySQL")],
    },
    Service {
        name: "PostgreSQL",
        triggers: &[&[Cpe("postgresql", "postgresql")], &[Words("postgresql")]],
        ports: &[(TCP, 5432, 5432, "PostgreSQL")],
    },
    Service {
        name: "MongoDB",
        triggers: &[&[Cpe("mongodb", "mongodb")], &[Words("mongodb")]],
        ports: &[(TCP, 27017, 27017, "MongoDB")],
    },
    Service {
        name: "Oracle Database TNS listener",
        triggers: &[&[Words("tns listener")], &[Words("oracle database server")]],
        ports: &[(TCP, 1521, 1521, "Oracle TNS")],
    },
    Service {
        name: "memcached",
        triggers: &[&[Cpe("memcached", "memcached")], &[Words("memcached")]],
        ports: &[(BOTH, 11211, 11211, "memcached")],
    },
    Service {
        name: "Elasticsearch",
        triggers: &[
            &[Cpe("elastic", "elasticsearch")],
            &[Cpe("elasticsearch", "elasticsearch")],
            &[Words("elasticsearch")],
        ],
        ports: &[
            (TCP, 9200, 9200, "Elasticsearch HTTP"),
            (TCP, 9300, 9300, "Elasticsearch transport"),
        ],
    },
    Service {
        name: "Docker Engine API",
        triggers: &[
            &[Words("docker daemon")],
            &[Words("docker engine")],
            &[Words("docker remote api")],
            &[Words("docker api")],
        ],
        ports: &[
            (TCP, 2375, 2375, "Docker API (plain)"),
            (TCP, 2376, 2376, "Docker API (TLS)"),
        ],
    },
    Service {
        name: "Apache ActiveMQ",
        triggers: &[&[Cpe("apache", "activemq*")], &[Words("activemq")]],
        ports: &[
            (TCP, 61616, 61616, "ActiveMQ OpenWire"),
            (TCP, 8161, 8161, "ActiveMQ web console"),
        ],
    },
    Service {
        name: "MQTT brokers",
        triggers: &[
            &[Cpe("eclipse", "mosquitto")],
            &[Words("mosquitto")],
            &[Words("mqtt broker")],
        ],
        ports: &[
            (TCP, 1883, 1883, "MQTT"),
            (TCP, 8883, 8883, "MQTT over TLS"),
        ],
    },
    Service {
        name: "VNC servers",
        triggers: &[
            &[Cpe("realvnc", "*")],
            &[Cpe("tigervnc", "*")],
            &[Cpe("tightvnc", "*")],
            &[Cpe("uvnc", "*")],
            &[Cpe("libvnc_project", "libvncserver")],
            &[Words("vnc server")],
            &[Words("realvnc")],
            &[Words("tightvnc")],
            &[Words("ultravnc")],
            &[Words("tigervnc")],
            &[Words("libvncserver")],
            &[Words("x11vnc")],
        ],
        ports: &[(TCP, 5900, 5900, "VNC")],
    },
    Service {
        name: "SNMP agents",
        triggers: &[
            &[Cpe("net_snmp", "net_snmp")],
            &[Words("net snmp")],
            &[Words("snmpd")],
            &[Words("snmp agent")],
            &[Words("snmp service")],
            &[Words("snmp subsystem")],
        ],
        ports: &[(UDP, 161, 161, "SNMP")],
    },
    Service {
        name: "SIP servers and phones",
        triggers: &[
            &[Cpe("digium", "asterisk")],
            &[Cpe("sangoma", "asterisk")],
            &[Words("asterisk")],
            &[Words("sip server")],
            &[Words("sip proxy")],
            &[Words("sip phone")],
            &[Words("kamailio")],
            &[Words("opensips")],
        ],
        ports: &[(BOTH, 5060, 5060, "SIP"), (TCP, 5061, 5061, "SIP over TLS")],
    },
    Service {
        name: "Modbus/TCP devices",
        triggers: &[&[Words("modbus")]],
        ports: &[(TCP, 502, 502, "Modbus/TCP")],
    },
    Service {
        name: "DNS servers",
        triggers: &[
            &[Cpe("isc", "bind")],
            &[Cpe("thekelleys", "dnsmasq")],
            &[Words("isc bind")],
            &[Words("bind 9")],
            &[Words("dnsmasq")],
            &[Words("dns server")],
            &[Words("dns resolver")],
        ],
        ports: &[(BOTH, 53, 53, "DNS")],
    },
    Service {
        name: "NTP servers",
        triggers: &[
            &[Cpe("ntp", "ntp")],
            &[Words("ntpd")],
            &[Words("network time protocol daemon")],
        ],
        ports: &[(UDP, 123, 123, "NTP")],
    },
    Service {
        name: "UPnP devices",
        triggers: &[&[Words("miniupnpd")], &[Words("upnp")], &[Words("ssdp")]],
        ports: &[(UDP, 1900, 1900, "SSDP")],
    },
    Service {
        name: "ONC RPC portmapper",
        triggers: &[
            &[Words("rpcbind")],
            &[Words("portmapper")],
            &[Words("portmap")],
        ],
        ports: &[(BOTH, 111, 111, "rpcbind")],
    },
    Service {
        name: "rsync daemon",
        triggers: &[&[Words("rsyncd")], &[Words("rsync daemon")]],
        ports: &[(TCP, 873, 873, "rsync")],
    },
    Service {
        name: "IPMI baseboard management controllers",
        triggers: &[
            &[Words("ipmi")],
            &[Words("baseboard management controller")],
        ],
        ports: &[(UDP, 623, 623, "IPMI RMCP")],
    },
];

fn services(adv: &Advisory, v: &View<'_>, out: &mut Vec<PortMatch>) {
    for service in SERVICES {
        let hit = service.triggers.iter().find_map(|conds| {
            let held: Option<Vec<Held>> = conds.iter().map(|c| c.check(v)).collect();
            held.map(|h| render(&h))
        });
        if let Some(why) = hit {
            push_ports(
                out,
                service.ports,
                MatchStrength::Service,
                &why,
                Some(service.name),
            );
        }
    }
    if adv.source == AdvisorySource::ExploitDb && adv.exploit_type.as_deref() == Some("webapps") {
        push_ports(
            out,
            WEB_PORTS,
            MatchStrength::Service,
            "Exploit-DB type 'webapps'",
            Some("web application"),
        );
    }
}

// ---------------------------------------------------------------------------------
// Route 3: text.

/// Protocol words in prose and the ports the protocol uses.
struct TextRule {
    phrases: &'static [&'static str],
    /// Only for Microsoft software (MS-RPC, named pipes).
    microsoft_only: bool,
    ports: Ports,
}

static TEXT_RULES: &[TextRule] = &[
    TextRule {
        phrases: &[
            "via rpc",
            "rpc interface",
            "rpc service",
            "rpc request",
            "rpc call",
            "rpc endpoint",
            "rpc protocol",
            "remote procedure call",
            "dcom",
            "dce rpc",
            "ms rpc",
        ],
        microsoft_only: true,
        ports: MSRPC_PORTS,
    },
    TextRule {
        phrases: &["named pipe"],
        microsoft_only: true,
        ports: SMB_PORTS,
    },
    TextRule {
        phrases: &[
            "smb",
            "smbv1",
            "smbv2",
            "smbv3",
            "smb1",
            "smb2",
            "smb3",
            "cifs",
            "server message block",
        ],
        microsoft_only: false,
        ports: SMB_PORTS,
    },
    TextRule {
        phrases: &["rdp", "remote desktop protocol"],
        microsoft_only: false,
        ports: &[(BOTH, 3389, 3389, "RDP")],
    },
    TextRule {
        phrases: &["dns", "domain name system"],
        microsoft_only: false,
        ports: &[(BOTH, 53, 53, "DNS")],
    },
    TextRule {
        phrases: &["netbios"],
        microsoft_only: false,
        ports: &[
            (UDP, 137, 137, "NetBIOS name service"),
            (UDP, 138, 138, "NetBIOS datagram service"),
            (TCP, 139, 139, "NetBIOS session service"),
        ],
    },
    TextRule {
        phrases: &[
            "http request",
            "https request",
            "http post",
            "http get",
            "http put",
            "http header",
            "http traffic",
            "web request",
        ],
        microsoft_only: false,
        ports: WEB_PORTS,
    },
    TextRule {
        phrases: &["telnet"],
        microsoft_only: false,
        ports: &[(TCP, 23, 23, "Telnet")],
    },
    TextRule {
        phrases: &["ssh"],
        microsoft_only: false,
        ports: &[(TCP, 22, 22, "SSH")],
    },
    TextRule {
        phrases: &["ftp"],
        microsoft_only: false,
        ports: &[(TCP, 21, 21, "FTP")],
    },
    TextRule {
        phrases: &["tftp"],
        microsoft_only: false,
        ports: &[(UDP, 69, 69, "TFTP")],
    },
    TextRule {
        phrases: &["smtp"],
        microsoft_only: false,
        ports: &[(TCP, 25, 25, "SMTP")],
    },
    TextRule {
        phrases: &["imap"],
        microsoft_only: false,
        ports: &[(TCP, 143, 143, "IMAP")],
    },
    TextRule {
        phrases: &["pop3"],
        microsoft_only: false,
        ports: &[(TCP, 110, 110, "POP3")],
    },
    TextRule {
        phrases: &["ldap"],
        microsoft_only: false,
        ports: &[(BOTH, 389, 389, "LDAP")],
    },
    TextRule {
        phrases: &["kerberos"],
        microsoft_only: false,
        ports: &[(BOTH, 88, 88, "Kerberos")],
    },
    TextRule {
        phrases: &["snmp", "simple network management protocol"],
        microsoft_only: false,
        ports: &[(UDP, 161, 161, "SNMP")],
    },
    TextRule {
        phrases: &["sip", "session initiation protocol"],
        microsoft_only: false,
        ports: &[(BOTH, 5060, 5060, "SIP")],
    },
    TextRule {
        phrases: &["vnc"],
        microsoft_only: false,
        ports: &[(TCP, 5900, 5900, "VNC")],
    },
    TextRule {
        phrases: &["ntp"],
        microsoft_only: false,
        ports: &[(UDP, 123, 123, "NTP")],
    },
    TextRule {
        phrases: &["nfs"],
        microsoft_only: false,
        ports: &[(BOTH, 2049, 2049, "NFS")],
    },
    TextRule {
        phrases: &["mqtt"],
        microsoft_only: false,
        ports: &[(TCP, 1883, 1883, "MQTT")],
    },
    TextRule {
        phrases: &["ajp", "apache jserv protocol"],
        microsoft_only: false,
        ports: &[(TCP, 8009, 8009, "AJP")],
    },
    TextRule {
        phrases: &["ike", "ikev1", "ikev2", "internet key exchange"],
        microsoft_only: false,
        ports: &[
            (UDP, 500, 500, "IKE"),
            (UDP, 4500, 4500, "IKE NAT traversal"),
        ],
    },
    TextRule {
        phrases: &["slp"],
        microsoft_only: false,
        ports: &[(BOTH, 427, 427, "SLP")],
    },
    TextRule {
        phrases: &["iiop", "t3 protocol"],
        microsoft_only: false,
        ports: &[(TCP, 7001, 7001, "WebLogic T3/IIOP")],
    },
];

fn text(v: &View<'_>, out: &mut Vec<PortMatch>) {
    port_phrases(v, out);
    for rule in TEXT_RULES {
        if rule.microsoft_only && !v.microsoft {
            continue;
        }
        let hit = rule
            .phrases
            .iter()
            .find_map(|p| Some((*p, v.find_words(p)?)));
        if let Some((phrase, at)) = hit {
            push_ports(
                out,
                rule.ports,
                MatchStrength::Text,
                &format!("'{phrase}' {at}"),
                None,
            );
        }
    }
}

/// `port 445`, `TCP port 3389`, `UDP port 161`, `ports 139 and 445`, `port 8443/tcp`
/// in the description or title. Numbers that are not ports (0, above 65535) are
/// ignored.
fn port_phrases(v: &View<'_>, out: &mut Vec<PortMatch>) {
    for (text, at) in [
        (&v.adv.description, "in the description"),
        (&v.adv.title, "in the title"),
    ] {
        let lower = text.to_lowercase();
        // Words as in `normalize`, but `1.5` stays one word so it is not read as port 1.
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '.'))
            .map(|w| w.trim_matches('.'))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            if *w != "port" && *w != "ports" {
                continue;
            }
            let before = i.checked_sub(1).and_then(|j| words.get(j)).copied();
            let mut proto = proto_word(before);
            let mut numbers: Vec<(u16, u16)> = Vec::new();
            let mut j = i + 1;
            while let Some(n) = words.get(j).and_then(|w| port_number(w)) {
                let mut last = n;
                // `N to M`, `N through M`
                if matches!(words.get(j + 1), Some(&"to") | Some(&"through")) {
                    if let Some(m) = words
                        .get(j + 2)
                        .and_then(|w| port_number(w))
                        .filter(|&m| m > n)
                    {
                        last = m;
                        j += 2;
                    }
                }
                numbers.push((n, last));
                j += 1;
                if matches!(words.get(j), Some(&"and") | Some(&"or"))
                    && words.get(j + 1).and_then(|w| port_number(w)).is_some()
                {
                    j += 1;
                }
            }
            if numbers.is_empty() {
                continue;
            }
            if proto.is_none() {
                proto = proto_word(words.get(j).copied());
            }
            for (first, last) in numbers {
                let said = match proto {
                    Some(p) => format!("{} port {}", p.name(), range_words(first, last)),
                    None => format!("port {}", range_words(first, last)),
                };
                let reason = format!("'{said}' {at} → {}", port_text(proto, first, last));
                let m = PortMatch {
                    proto,
                    first,
                    last,
                    strength: MatchStrength::Text,
                    reason,
                };
                if !out
                    .iter()
                    .any(|o| o.strength == m.strength && o.contains(&m))
                {
                    out.push(m);
                }
            }
        }
    }
}

fn range_words(first: u16, last: u16) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first} to {last}")
    }
}

fn proto_word(w: Option<&str>) -> Option<Protocol> {
    match w? {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        _ => None,
    }
}

/// A port number written in full: 1 to 65535, digits only.
fn port_number(w: &str) -> Option<u16> {
    if w.is_empty() || w.len() > 5 || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    w.parse::<u16>().ok().filter(|&n| n > 0)
}

#[cfg(test)]
pub(super) mod table {
    //! Access to the tables for the tests in `advisory::tests`.
    pub fn service_names() -> Vec<&'static str> {
        super::SERVICES.iter().map(|s| s.name).collect()
    }

    /// Every phrase of both tables.
    pub fn phrases() -> Vec<&'static str> {
        let mut out = Vec::new();
        for s in super::SERVICES {
            for t in s.triggers {
                for c in *t {
                    match *c {
                        super::Cond::Vendor(p)
                        | super::Cond::Product(p)
                        | super::Cond::Words(p) => out.push(p),
                        super::Cond::Cpe(..) => {}
                    }
                }
            }
        }
        for r in super::TEXT_RULES {
            out.extend(r.phrases.iter().copied());
        }
        out
    }

    pub fn normalize(s: &str) -> String {
        super::normalize(s)
    }
}
