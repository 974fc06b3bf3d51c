//! Built-in port table: IANA service names (as in /etc/services) for the ports most
//! seen in scan reports, each with a short note telling an analyst why the port is
//! scanned and a short citation for that note; plus port ranges (Windows dynamic
//! MS-RPC ports, the IANA dynamic range) that explain ports without a row of their
//! own. Hand-written data: no crate ships this table.
//!
//! Names follow the IANA service name registry. Where IANA has no name the row says
//! `unknown` (unassigned or deprecated) or `reserved` (reserved by IANA), and the
//! note says what actually listens there. Notes start lowercase unless they start
//! with a name or acronym, and end without a period.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Both,
}

impl Proto {
    /// Whether a row for `self` applies to `p` (which is `Tcp` or `Udp`).
    pub(crate) fn covers(self, p: Proto) -> bool {
        self == p || self == Both
    }
}

use Proto::{Both, Tcp, Udp};

/// One row: protocol, port, IANA service name, note, source of the note.
pub(crate) type Row = (Proto, u16, &'static str, &'static str, &'static str);

/// One range: protocol, first port, last port, name, note, source. Used only for
/// ports without a row.
pub(crate) type Range = (Proto, u16, u16, &'static str, &'static str, &'static str);

/// The names a row uses when IANA registers no name for the port.
pub(crate) const PLACEHOLDER_NAMES: &[&str] = &["unknown", "reserved"];

const KB832017: &str = "Microsoft KB 832017 (service overview and network port requirements)";
const KB929851: &str = "Microsoft KB 929851 (default dynamic port range for TCP/IP)";
const TA14_017A: &str = "US-CERT TA14-017A (UDP-based amplification attacks)";
const TA16_288A: &str = "US-CERT TA16-288A (Mirai and other botnets)";
const ISC: &str = "SANS ISC port report";
const IANA: &str = "IANA service name registry";
const SHADOWSERVER: &str = "Shadowserver scan reports";
const MS_RPC_OLD: &str = "dynamic MS-RPC range on Windows 2000/2003/XP";

pub(crate) static TABLE: &[Row] = &[
    (Tcp, 1, "tcpmux", "TCP port service multiplexer, almost never served; hits usually come from sweeps of low ports", "RFC 1078"),
    (Both, 7, "echo", "echo service; UDP echo can be bounced between hosts or reflected at a victim", "RFC 862; CERT CA-1996-01 (UDP port denial-of-service)"),
    (Udp, 17, "qotd", "quote of the day; UDP amplification vector", TA14_017A),
    (Udp, 19, "chargen", "character generator; UDP amplification vector with one of the largest amplification factors", TA14_017A),
    (Tcp, 21, "ftp", "FTP; brute force, anonymous-login and writable-directory scans", "RFC 959; SANS ISC port report"),
    (Tcp, 22, "ssh", "SSH; password brute force and botnet propagation", "RFC 4251; SANS ISC port report"),
    (Tcp, 23, "telnet", "Telnet; IoT botnets (Mirai family) log in with default credentials and propagate here", TA16_288A),
    (Tcp, 25, "smtp", "SMTP; open-relay, credential and spam-bot scans", "RFC 5321; SANS ISC port report"),
    (Both, 42, "nameserver", "WINS replication on Windows servers; target of the MS04-045 WINS vulnerability", "Microsoft KB 832017; CVE-2004-1080 (MS04-045)"),
    (Udp, 53, "domain", "DNS; open-resolver and amplification scans", "US-CERT TA13-088A (DNS amplification attacks)"),
    (Tcp, 53, "domain", "DNS over TCP; zone-transfer (AXFR) probes", "RFC 5936 (DNS zone transfer)"),
    (Udp, 69, "tftp", "TFTP; theft of device configurations and firmware, UDP amplification vector", TA14_017A),
    (Tcp, 79, "finger", "Finger; leaks user names and login times for account enumeration", "RFC 1288"),
    (Tcp, 80, "http", "HTTP; web exploit, crawler and botnet traffic", "RFC 9110; SANS ISC port report"),
    (Tcp, 81, "unknown", "unassigned; alternative HTTP port of IP cameras, DVRs and router panels", ISC),
    (Both, 88, "kerberos", "Kerberos; exposed domain controllers, user enumeration and AS-REP roasting", KB832017),
    (Tcp, 102, "iso-tsap", "ISO-TSAP; Siemens S7 PLCs speak S7comm here (industrial control)", "RFC 1006; Shadowserver scan reports"),
    (Tcp, 110, "pop3", "POP3; mail credential brute force", "RFC 1939"),
    (Udp, 111, "sunrpc", "ONC RPC portmapper; lists RPC services and is a UDP amplification vector", TA14_017A),
    (Tcp, 111, "sunrpc", "ONC RPC portmapper; lists RPC services such as NFS and NIS", "RFC 1833 (binding protocols for ONC RPC)"),
    (Tcp, 113, "auth", "ident; tells anyone which user owns a connection", "RFC 1413"),
    (Tcp, 119, "nntp", "NNTP; open news servers abused for spam and file sharing", "RFC 3977"),
    (Udp, 123, "ntp", "NTP; monlist amplification and open-server scans", "CVE-2013-5211 (NTP monlist amplification)"),
    (Tcp, 135, "epmap", "MS-RPC endpoint mapper; Windows RPC services are found through it (Blaster worm)", "Microsoft KB 832017; CVE-2003-0352 (MS03-026)"),
    (Udp, 135, "epmap", "MS-RPC endpoint mapper over UDP; Windows Messenger-service spam was sent here", "Microsoft KB 832017; SANS ISC port report"),
    (Udp, 137, "netbios-ns", "NetBIOS name service; leaks host and user names, UDP amplification vector", "US-CERT TA14-017A (UDP-based amplification attacks); Microsoft KB 832017"),
    (Udp, 138, "netbios-dgm", "NetBIOS datagram service; Windows browser announcements, never legitimate from the Internet", KB832017),
    (Tcp, 139, "netbios-ssn", "NetBIOS session service; SMB over NetBIOS, share enumeration and SMB exploits (Conficker)", "Microsoft KB 832017; CVE-2008-4250 (MS08-067)"),
    (Tcp, 143, "imap", "IMAP; mail credential brute force", "RFC 9051"),
    (Udp, 161, "snmp", "SNMP; community-string guessing, device information leaks and amplification", TA14_017A),
    (Udp, 177, "xdmcp", "X Display Manager Control Protocol; offers graphical logins and can be abused for reflection", SHADOWSERVER),
    (Tcp, 179, "bgp", "BGP; exposed router control planes", "RFC 4271"),
    (Tcp, 389, "ldap", "LDAP; directory (Active Directory) enumeration", KB832017),
    (Udp, 389, "ldap", "CLDAP; large UDP amplification vector on Active Directory servers", TA14_017A),
    (Both, 427, "svrloc", "Service Location Protocol; reflection amplification and VMware ESXi OpenSLP exploits (ESXiArgs)", "CVE-2023-29552 (SLP amplification); CVE-2021-21974 (ESXi OpenSLP)"),
    (Tcp, 443, "https", "HTTPS; web exploit, VPN-appliance and TLS scans", "RFC 9110; SANS ISC port report"),
    (Udp, 443, "https", "QUIC (HTTP/3); scans find HTTP/3 servers", "RFC 9000 (QUIC)"),
    (Tcp, 445, "microsoft-ds", "SMB over TCP; worm propagation (e.g. WannaCry, Conficker)", "CVE-2017-0144 (MS17-010, EternalBlue); Microsoft KB 832017"),
    (Tcp, 464, "kpasswd", "Kerberos password change; marks domain controllers", KB832017),
    (Tcp, 465, "submissions", "SMTP submission over TLS; mail credential brute force", "RFC 8314"),
    (Udp, 500, "isakmp", "IKE; VPN gateway discovery and fingerprinting", "RFC 7296 (IKEv2); Microsoft KB 832017"),
    (Tcp, 502, "mbap", "Modbus/TCP; industrial controllers that accept unauthenticated reads and writes", "Modbus Application Protocol specification; Shadowserver scan reports"),
    (Tcp, 513, "login", "rlogin; host-based trust lets attackers log in without a password", "RFC 1282 (BSD rlogin)"),
    (Tcp, 514, "shell", "rsh; host-based trust runs commands without a password", IANA),
    (Udp, 514, "syslog", "syslog; log injection and device discovery", "RFC 5426 (syslog over UDP)"),
    (Tcp, 515, "printer", "LPD printing; exposed print servers", "RFC 1179"),
    (Udp, 520, "router", "RIPv1; route injection and UDP amplification vector", TA14_017A),
    (Udp, 523, "ibm-db2", "IBM DB2 discovery service; leaks database details and can be abused for amplification", SHADOWSERVER),
    (Tcp, 548, "afpovertcp", "Apple Filing Protocol; exposed file shares on Macs and NAS devices", IANA),
    (Tcp, 554, "rtsp", "RTSP; IP cameras and DVRs exposing video streams", "RFC 2326"),
    (Tcp, 587, "submission", "mail submission; SMTP credential brute force", "RFC 6409"),
    (Tcp, 593, "http-rpc-epmap", "RPC over HTTP endpoint mapper; Windows RPC (Exchange, Outlook Anywhere) is reachable through it", KB832017),
    (Udp, 623, "asf-rmcp", "IPMI (RMCP); baseboard management controllers that leak password hashes", "CVE-2013-4786 (IPMI 2.0 RAKP)"),
    (Tcp, 631, "ipp", "IPP printing; exposed CUPS and printer administration", "RFC 8011"),
    (Udp, 631, "ipp", "CUPS browsing; cups-browsed accepts printer announcements from anyone", "CVE-2024-47176 (cups-browsed)"),
    (Tcp, 636, "ldaps", "LDAP over TLS; directory enumeration", KB832017),
    (Tcp, 873, "rsync", "rsync daemon; anonymous modules leak or accept files", IANA),
    (Tcp, 993, "imaps", "IMAP over TLS; mail credential brute force", "RFC 8314"),
    (Tcp, 995, "pop3s", "POP3 over TLS; mail credential brute force", "RFC 8314"),
    (Tcp, 1023, "reserved", "reserved by IANA; hits usually come from sweeps of the well-known range", IANA),
    (Tcp, 1025, "blackjack", "first dynamic port for MS-RPC on Windows 2000/2003/XP; reachable RPC interfaces there include the DNS Server RPC interface", "Microsoft KB 929851 (default dynamic port range for TCP/IP); Microsoft KB 832017"),
    (Tcp, 1026, "cap", "second dynamic MS-RPC port on Windows 2000/2003/XP", KB929851),
    (Tcp, 1027, "reserved", MS_RPC_OLD, KB929851),
    (Tcp, 1028, "unknown", MS_RPC_OLD, KB929851),
    (Tcp, 1029, "solid-mux", MS_RPC_OLD, KB929851),
    (Tcp, 1030, "reserved", MS_RPC_OLD, KB929851),
    (Udp, 1026, "cap", "Windows Messenger-service spam", ISC),
    (Udp, 1027, "6a44", "Windows Messenger-service spam", ISC),
    (Tcp, 1080, "socks", "SOCKS proxy; open-proxy scans", "RFC 1928"),
    (Tcp, 1099, "rmiregistry", "Java RMI registry; remote object calls and deserialization attacks", IANA),
    (Both, 1194, "openvpn", "OpenVPN; VPN endpoint discovery", IANA),
    (Tcp, 1433, "ms-sql-s", "Microsoft SQL Server; worm and brute-force scans", KB832017),
    (Udp, 1434, "ms-sql-m", "SQL Server resolution service; SQL Slammer and amplification", "CVE-2002-0649 (MS02-039, SQL Slammer)"),
    (Tcp, 1521, "ncube-lm", "registered to nCube but used by the Oracle database TNS listener", "CVE-2012-1675 (Oracle TNS listener poison)"),
    (Udp, 1701, "l2tp", "L2TP VPN; VPN endpoint discovery", "RFC 2661; Microsoft KB 832017"),
    (Udp, 1812, "radius", "RADIUS authentication; exposed servers and Blast-RADIUS forgery", "RFC 2865; CVE-2024-3596 (Blast-RADIUS)"),
    (Tcp, 1723, "pptp", "PPTP VPN; weak MS-CHAPv2 authentication and VPN brute force", "RFC 2637; Microsoft KB 832017"),
    (Tcp, 1883, "mqtt", "MQTT; IoT message brokers that often accept anonymous clients", "OASIS MQTT; Shadowserver scan reports"),
    (Udp, 1900, "ssdp", "SSDP/UPnP; device discovery and UDP amplification vector", TA14_017A),
    (Tcp, 2000, "cisco-sccp", "Cisco SCCP (Skinny) VoIP; MikroTik routers also serve their bandwidth test here", IANA),
    (Both, 2049, "nfs", "NFS; exported file systems readable from the Internet", "RFC 7530"),
    (Tcp, 2082, "infowave", "registered to Infowave but cPanel's HTTP port; hosting control panels", ISC),
    (Tcp, 2083, "radsec", "RADIUS over TLS, and cPanel's HTTPS port; hosting control panels", "RFC 6614 (RadSec); SANS ISC port report"),
    (Tcp, 2181, "eforward", "registered to eForward but the Apache ZooKeeper client port; unauthenticated cluster data", "Apache ZooKeeper documentation (default client port 2181)"),
    (Tcp, 2222, "EtherNet-IP-1", "registered for EtherNet/IP I/O but mostly probed as an alternative SSH port", ISC),
    (Tcp, 2323, "3d-nfsd", "alternative Telnet port on IoT devices, scanned by Mirai-family botnets", TA16_288A),
    (Tcp, 2375, "docker", "Docker API without TLS; container creation for cryptominer campaigns", "Docker documentation (daemon socket: 2375 plain, 2376 TLS)"),
    (Tcp, 2376, "docker-s", "Docker API over TLS", "Docker documentation (daemon socket: 2375 plain, 2376 TLS)"),
    (Tcp, 2379, "etcd-client", "etcd client API; Kubernetes secrets readable when unauthenticated", "etcd documentation (client port 2379)"),
    (Tcp, 2404, "iec-104", "IEC 60870-5-104; power-grid telecontrol (industrial control)", "IEC 60870-5-104; Shadowserver scan reports"),
    (Tcp, 3128, "ndl-aas", "registered to NDL but the default Squid HTTP proxy port; open-proxy scans", "Squid documentation (default http_port 3128)"),
    (Tcp, 3260, "iscsi-target", "iSCSI; exposed storage volumes", "RFC 7143"),
    (Tcp, 3268, "msft-gc", "Active Directory Global Catalog (LDAP); directory enumeration", KB832017),
    (Tcp, 3269, "msft-gc-ssl", "Active Directory Global Catalog over TLS", KB832017),
    (Udp, 3283, "net-assistant", "Apple Remote Desktop (ARMS); UDP amplification vector", "NETSCOUT ASERT (2019) ARMS reflection/amplification"),
    (Tcp, 3306, "mysql", "MySQL; brute force and ransom wiping of exposed databases", ISC),
    (Both, 3389, "ms-wbt-server", "Remote Desktop (RDP); brute force, BlueKeep exploits and UDP reflection", "CVE-2019-0708 (BlueKeep); Microsoft KB 832017"),
    (Udp, 3702, "ws-discovery", "WS-Discovery; UDP amplification vector on cameras and printers", "Shadowserver Accessible WS-Discovery Service report"),
    (Tcp, 4369, "epmd", "Erlang port mapper; exposes RabbitMQ and CouchDB cluster nodes", IANA),
    (Tcp, 4444, "krb524", "common reverse-shell and Metasploit default port; the Blaster worm's remote shell", "CVE-2003-0352 (MS03-026, Blaster)"),
    (Udp, 4500, "ipsec-nat-t", "IPsec NAT traversal; VPN gateway discovery", "RFC 3948; Microsoft KB 832017"),
    (Tcp, 4786, "smart-install", "Cisco Smart Install; unauthenticated switch reconfiguration and code execution", "CVE-2018-0171 (Cisco Smart Install)"),
    (Tcp, 4840, "opcua-tcp", "OPC UA; industrial automation servers", "IEC 62541 (OPC UA); Shadowserver scan reports"),
    (Tcp, 4899, "radmin-port", "Radmin remote control; password guessing", IANA),
    (Tcp, 5000, "commplex-main", "UPnP control, NAS web interfaces (Synology) and Docker registries", ISC),
    (Both, 5060, "sip", "SIP; VoIP toll-fraud and extension scans (SIPVicious)", "RFC 3261; SANS ISC port report"),
    (Udp, 5351, "nat-pmp", "NAT-PMP; routers that answer on their WAN side leak addresses and accept port mappings", "RFC 6886"),
    (Udp, 5353, "mdns", "multicast DNS; leaks host and service names, UDP amplification vector", TA14_017A),
    (Tcp, 5432, "postgresql", "PostgreSQL; brute force of exposed databases", ISC),
    (Tcp, 5555, "personal-agent", "Android Debug Bridge over TCP; botnets (ADB.Miner) install apps on TV boxes and phones", "Android developer documentation (adb tcpip 5555)"),
    (Tcp, 5601, "esmagent", "registered to ESM but the Kibana web interface; Timelion code execution", "CVE-2019-7609 (Kibana)"),
    (Tcp, 5631, "pcanywheredata", "pcAnywhere remote control", IANA),
    (Udp, 5632, "pcanywherestat", "pcAnywhere status; host discovery", IANA),
    (Tcp, 5672, "amqp", "AMQP; exposed message brokers such as RabbitMQ", IANA),
    (Udp, 5683, "coap", "CoAP; IoT devices, UDP amplification vector", "RFC 7252 section 11.3 (amplification)"),
    (Tcp, 5900, "rfb", "VNC; unauthenticated desktops and brute force", "RFC 6143 (RFB protocol)"),
    (Tcp, 5984, "couchdb", "CouchDB HTTP API; admin bypass and code execution used for cryptomining", "CVE-2017-12635; CVE-2017-12636 (CouchDB)"),
    (Tcp, 5985, "wsman", "WinRM over HTTP; PowerShell remoting brute force", "Microsoft WinRM documentation (ports 5985/5986)"),
    (Tcp, 5986, "wsmans", "WinRM over HTTPS; also Azure OMI agents (OMIGOD)", "CVE-2021-38647 (OMIGOD)"),
    (Tcp, 6000, "x11", "X11; open X servers allow screen capture and keystroke injection", IANA),
    (Tcp, 6379, "redis", "Redis without auth; cryptominer and SSH-key planting campaigns", "Redis security documentation"),
    (Tcp, 6443, "sun-sr-https", "registered to Sun but the default Kubernetes API server port", "Kubernetes documentation (ports and protocols)"),
    (Tcp, 6667, "ircu", "IRC; classic botnet command-and-control port", IANA),
    (Tcp, 7001, "afs3-callback", "registered to AFS but the default Oracle WebLogic port; console code execution", "CVE-2020-14882 (Oracle WebLogic)"),
    (Tcp, 7547, "cwmp", "TR-069 CPE management; router botnets (Mirai variant, 2016)", "Broadband Forum TR-069; SANS ISC port report"),
    (Tcp, 8000, "irdmi", "alternative HTTP; development servers, DVRs and admin panels", ISC),
    (Tcp, 8001, "vcom-tunnel", "alternative HTTP; admin panels and development servers", ISC),
    (Tcp, 8008, "http-alt", "alternative HTTP", IANA),
    (Tcp, 8009, "nvme-disc", "registered to NVMe discovery but the Apache Tomcat AJP connector; Ghostcat file read", "CVE-2020-1938 (Ghostcat)"),
    (Tcp, 8080, "http-alt", "alternative HTTP and proxies", "IANA service name registry; SANS ISC port report"),
    (Tcp, 8081, "sunproxyadmin", "alternative HTTP; admin panels and proxies", ISC),
    (Tcp, 8088, "radan-http", "alternative HTTP (Hadoop YARN, whose REST API runs submitted jobs)", "Apache Hadoop YARN documentation (ResourceManager web port 8088)"),
    (Tcp, 8291, "unknown", "unassigned; MikroTik Winbox, exploited to read router credentials", "CVE-2018-14847 (MikroTik Winbox)"),
    (Tcp, 8443, "pcsync-https", "alternative HTTPS; appliance and VPN admin panels", ISC),
    (Tcp, 8545, "unknown", "unassigned; Ethereum JSON-RPC (geth), scanned for unlocked wallets", "go-ethereum documentation (default HTTP-RPC port 8545)"),
    (Tcp, 8883, "secure-mqtt", "MQTT over TLS; IoT message brokers", "OASIS MQTT"),
    (Tcp, 8888, "ddi-tcp-1", "alternative HTTP; Jupyter notebooks and admin panels", ISC),
    (Tcp, 9000, "cslistener", "alternative HTTP (PHP-FPM, portals); exposed PHP-FPM runs arbitrary PHP", ISC),
    (Tcp, 9090, "websm", "web consoles such as Cockpit and Prometheus", IANA),
    (Tcp, 9100, "pdl-datastream", "raw printing (HP JetDirect); anyone who reaches it can print and send PJL commands", IANA),
    (Tcp, 9200, "wap-wsp", "registered to WAP but the Elasticsearch HTTP API; unauthenticated data and script execution", "CVE-2015-1427 (Elasticsearch)"),
    (Tcp, 9443, "tungsten-https", "alternative HTTPS; admin panels such as Portainer", ISC),
    (Tcp, 10000, "ndmp", "registered to NDMP but Webmin's default port; backdoored Webmin releases", "CVE-2019-15107 (Webmin)"),
    (Udp, 10001, "scp-config", "Ubiquiti device discovery; leaks device details and is a UDP amplification vector", SHADOWSERVER),
    (Tcp, 10250, "unknown", "unassigned; Kubernetes kubelet API, which runs commands in pods when anonymous access is on", "Kubernetes documentation (ports and protocols)"),
    (Tcp, 11211, "memcache", "memcached; exposed caches leak data", "CVE-2018-1000115 (memcached)"),
    (Udp, 11211, "memcache", "memcached; large amplification vector", "CVE-2018-1000115 (memcached UDP amplification)"),
    (Both, 20000, "dnp", "DNP3; utility SCADA (industrial control)", "IEEE 1815 (DNP3); Shadowserver scan reports"),
    (Udp, 26000, "quake", "Quake game servers; UDP amplification vector", TA14_017A),
    (Udp, 27015, "unknown", "unassigned; Steam/Source game-server queries, UDP amplification vector", TA14_017A),
    (Tcp, 27017, "mongodb", "MongoDB without auth; data theft and ransom wiping", "MongoDB security checklist"),
    (Tcp, 37215, "unknown", "unassigned; Huawei HG532 UPnP command injection used by IoT botnets (Satori, Mirai variants)", "CVE-2017-17215 (Huawei HG532)"),
    (Both, 44818, "EtherNet-IP-2", "EtherNet/IP explicit messaging; Rockwell/Allen-Bradley PLCs (industrial control)", "ODVA EtherNet/IP; Shadowserver scan reports"),
    (Udp, 47808, "bacnet", "BACnet/IP; building automation controllers (HVAC, access control)", "ASHRAE 135 (BACnet); Shadowserver scan reports"),
    (Tcp, 52869, "unknown", "unassigned; Realtek SDK miniigd UPnP command injection used by IoT botnets", "CVE-2014-8361 (Realtek SDK miniigd)"),
];

/// Ranges, most specific first; only consulted for ports without a row.
pub(crate) static RANGES: &[Range] = &[
    (
        Tcp,
        1025,
        5000,
        "-",
        "in the dynamic port range Windows 2000/2003/XP use for MS-RPC services (1025-5000)",
        KB929851,
    ),
    (
        Tcp,
        49152,
        65535,
        "dynamic",
        "IANA dynamic/private port range; also the dynamic MS-RPC range on Windows Vista/2008 and later",
        "RFC 6335 (IANA port ranges); Microsoft KB 929851 (default dynamic port range for TCP/IP)",
    ),
    (
        Udp,
        49152,
        65535,
        "dynamic",
        "IANA dynamic/private port range",
        "RFC 6335 (IANA port ranges)",
    ),
];

/// The row for a port; `p` is `Tcp` or `Udp`.
pub(crate) fn row(p: Proto, port: u16) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.1 == port && r.0.covers(p))
}

/// The first range holding a port; `p` is `Tcp` or `Udp`.
pub(crate) fn range(p: Proto, port: u16) -> Option<&'static Range> {
    RANGES
        .iter()
        .find(|r| r.0.covers(p) && (r.1..=r.2).contains(&port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// First words allowed to start a note with a capital: names and acronyms.
    const PROPER: &[&str] = &[
        "Telnet",
        "Finger",
        "Kerberos",
        "Modbus/TCP",
        "Apple",
        "Active",
        "Android",
        "Cisco",
        "Docker",
        "Erlang",
        "IPsec",
        "Java",
        "MikroTik",
        "OpenVPN",
        "PostgreSQL",
        "MySQL",
        "Quake",
        "Radmin",
        "Redis",
        "Remote",
        "Service",
        "Windows",
        "X",
        "Ubiquiti",
        "Microsoft",
        "MongoDB",
        "CouchDB",
        "WinRM",
        "WS-Discovery",
        "OPC",
        "BACnet/IP",
        "EtherNet/IP",
        "IBM",
        "CUPS",
        "QUIC",
        "TR-069",
        "SQL",
        "IEC",
        "DNP3",
        "NetBIOS",
        "Apache",
    ];

    fn expanded() -> Vec<(Proto, u16)> {
        let mut v = Vec::new();
        for r in TABLE {
            match r.0 {
                Both => {
                    v.push((Tcp, r.1));
                    v.push((Udp, r.1));
                }
                p => v.push((p, r.1)),
            }
        }
        v
    }

    #[test]
    fn table_is_large_and_complete() {
        let pairs: HashSet<_> = expanded().into_iter().collect();
        assert_eq!(pairs.len(), expanded().len(), "overlapping rows");
        assert!(TABLE.len() >= 150, "only {} rows", TABLE.len());
        for (p, n, name, note, source) in TABLE {
            assert!(
                !name.is_empty() && !name.contains(char::is_whitespace),
                "{p:?}/{n}"
            );
            assert!(!note.is_empty(), "{p:?}/{n} has no note");
            assert!(!source.is_empty(), "{p:?}/{n} has no source");
        }
    }

    #[test]
    fn notes_follow_the_style() {
        let all = TABLE
            .iter()
            .map(|r| (r.1, r.3, r.4))
            .chain(RANGES.iter().map(|r| (r.1, r.4, r.5)));
        for (n, note, source) in all {
            assert!(!note.ends_with('.'), "{n}: trailing period");
            assert_eq!(note.trim(), note, "{n}: stray whitespace");
            assert!(!note.contains('\n') && !source.contains('\n'), "{n}");
            let first = note.split_whitespace().next().unwrap_or("");
            let word = first.trim_end_matches([';', ',']);
            let starts_upper = word.chars().next().is_some_and(char::is_uppercase);
            let acronym = word
                .chars()
                .skip(1)
                .any(|c| c.is_uppercase() || c.is_ascii_digit());
            assert!(
                !starts_upper || acronym || PROPER.contains(&word),
                "{n}: note starts with a capitalised word: {note}"
            );
        }
    }

    #[test]
    fn scan_report_ports_are_present() {
        let must = [
            (Tcp, 22),
            (Tcp, 23),
            (Tcp, 80),
            (Tcp, 135),
            (Udp, 137),
            (Udp, 138),
            (Tcp, 139),
            (Tcp, 445),
            (Tcp, 1025),
            (Tcp, 1026),
            (Tcp, 1027),
            (Tcp, 1028),
            (Tcp, 1029),
            (Tcp, 1030),
            (Tcp, 1433),
            (Udp, 1434),
            (Tcp, 3389),
            (Tcp, 5900),
            (Tcp, 6379),
            (Tcp, 8080),
            (Tcp, 2323),
            (Tcp, 37215),
            (Tcp, 52869),
            (Tcp, 7547),
            (Tcp, 5555),
            (Tcp, 502),
            (Tcp, 102),
            (Tcp, 20000),
            (Udp, 47808),
            (Tcp, 1883),
            (Tcp, 8883),
            (Udp, 500),
            (Udp, 4500),
            (Udp, 1194),
            (Tcp, 1723),
            (Udp, 19),
            (Udp, 53),
            (Udp, 111),
            (Udp, 123),
            (Udp, 161),
            (Udp, 389),
            (Udp, 1900),
            (Udp, 3702),
            (Udp, 11211),
            (Udp, 5353),
            (Udp, 27015),
        ];
        for (p, n) in must {
            assert!(row(p, n).is_some(), "{p:?}/{n} missing");
        }
    }

    #[test]
    fn ranges_are_sane() {
        for (p, lo, hi, name, _, _) in RANGES {
            assert!(lo <= hi && *p != Both, "{lo}-{hi}");
            assert!(!name.is_empty());
        }
        assert_eq!(range(Tcp, 1031).map(|r| r.1), Some(1025));
        assert_eq!(range(Tcp, 5001), None);
        assert_eq!(range(Udp, 1031), None);
        assert_eq!(range(Udp, 65535).map(|r| r.3), Some("dynamic"));
    }
}
