//! The network of instances (`--network isolated|none|host`).
//!
//! An instance's runtime API must be reachable by that instance alone, and nothing of the host
//! (fgs's own APIs, `/metrics`, other instances) by any instance. With `isolated` and `none`,
//! each instance gets a network namespace of its own, and fgs creates the runtime API's
//! listening socket *inside* it (`127.0.0.1:9000` there): a socket belongs to the namespace it
//! was made in, so fgs serves it from the host while only processes of that namespace can
//! connect. The host's loopback, where fgs listens, does not exist in the namespace.
//!
//! - `none`: the namespace has only its loopback: no way out at all.
//! - `isolated` (the default with the namespace sandbox): also a veth pair to the host, a /30
//!   of its own from a per-host /16 of `100.64.0.0/10`, and a default route; the host
//!   forwards and masquerades its traffic to the outside, and an nftables table drops
//!   everything an instance sends to the host itself (any of its addresses, so no fgs listener)
//!   or to another instance.
//! - `host`: instances share the host's network and the runtime API listens on host loopback
//!   (the only choice without root, and for functions that must reach host-local services).
//!
//! Making a namespace with its veth takes milliseconds (two `ip` runs), so a pool keeps a few
//! ready and a background thread refills it: a cold start only takes one.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::lease::{Block, Lease};

/// Where the runtime API listens inside an instance's own namespace.
pub const RUNTIME_API_IN_NAMESPACE: &str = "127.0.0.1:9000";
/// Instances' veth interfaces on the host are named `fgsv<block><n>`.
const VETH_PREFIX: &str = "fgsv";
/// Networks kept ready.
const POOL_SIZE: usize = 8;
/// A host's block: `100.64.0.0/10` in /16s, each holding 16384 instance /30s (more than the
/// instances a host can hold: `--host-concurrency` running plus the warm ones).
const BLOCKS: u32 = 64;
const SUBNETS_PER_BLOCK: u32 = 16384;
/// The prefix length of a block.
const BLOCK_PREFIX: u32 = 32 - (SUBNETS_PER_BLOCK * 4).trailing_zeros();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Isolated,
    None,
    Host,
}

impl NetworkMode {
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::Isolated => "isolated",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

/// One instance's network: the runtime API's listener and the namespace it lives in.
pub struct InstanceNetwork {
    /// The runtime API's listening socket (inside the namespace, or on host loopback).
    pub listener: TcpListener,
    namespace: Option<Namespace>,
}

/// What keeps an instance's namespace (and its subnet) reserved; dropped with the instance.
pub struct Namespace {
    fd: OwnedFd,
    _subnet: Option<Lease>,
}

impl Namespace {
    /// A path the sandbox helper can open to join the namespace.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}

impl Namespace {
    /// Connects to `addr` from inside the namespace: a socket belongs to the namespace it was
    /// made in, so this one reaches the instance's own loopback (an HTTP function's port 8000),
    /// which nothing outside the namespace can. Blocking (on a short-lived thread of its own,
    /// which alone joins the namespace).
    pub fn connect(&self, addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
        let fd = self.fd.try_clone()?;
        std::thread::spawn(move || {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1))
        })
        .join()
        .map_err(|_| std::io::Error::other("network namespace thread panicked"))?
    }
}

impl InstanceNetwork {
    /// The host's network: a listener on a free loopback port.
    pub fn host() -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind("127.0.0.1:0")?,
            namespace: None,
        })
    }

    /// The listener, and the namespace to keep alive while the instance runs.
    pub fn into_parts(self) -> (TcpListener, Option<Namespace>) {
        (self.listener, self.namespace)
    }
}

/// How `isolated` reaches the outside: the host's block of addresses and the tools.
struct Uplink {
    ip: PathBuf,
    /// The block of subnets this host took, and its first address.
    block: Block,
    base: u32,
    table: String,
    nft: PathBuf,
}

/// Makes instance networks for one mode, keeping a few ready.
pub struct Networks {
    mode: NetworkMode,
    uplink: Option<Uplink>,
    ready: Mutex<Vec<InstanceNetwork>>,
    wanted: Condvar,
    next_veth: AtomicU64,
}

impl Networks {
    /// Prepares the host for `mode` (for `isolated`: forwarding, the nftables table named
    /// after `host_key`, a block of addresses) and starts the pool.
    pub fn new(mode: NetworkMode, host_key: &str) -> Result<Arc<Self>, String> {
        let uplink = match mode {
            NetworkMode::Isolated => Some(Uplink::prepare(host_key)?),
            NetworkMode::None | NetworkMode::Host => None,
        };
        let networks = Arc::new(Self {
            mode,
            uplink,
            ready: Mutex::new(Vec::new()),
            wanted: Condvar::new(),
            // Counting from this process's id: a host started on the block a host that has
            // just exited held would otherwise reuse the names of veths the kernel has not
            // finished removing with that host's namespaces ("File exists").
            next_veth: AtomicU64::new(u64::from(std::process::id() & 0xf_ffff) << 12),
        });
        if mode != NetworkMode::Host {
            // Fail now, not at the first cold start, when namespaces cannot be made here.
            let first = networks
                .create()
                .map_err(|e| format!("network namespace: {e}"))?;
            networks.ready.lock().unwrap().push(first);
            let filler = Arc::downgrade(&networks);
            std::thread::Builder::new()
                .name("fgs-netns-pool".into())
                .spawn(move || refill(filler))
                .map_err(|e| e.to_string())?;
        }
        Ok(networks)
    }

    pub fn mode(&self) -> NetworkMode {
        self.mode
    }

    /// A network for a new instance: from the pool, or made now when it is empty.
    pub fn take(&self) -> std::io::Result<InstanceNetwork> {
        if self.mode == NetworkMode::Host {
            return InstanceNetwork::host();
        }
        let ready = self.ready.lock().unwrap().pop();
        self.wanted.notify_one();
        match ready {
            Some(network) => Ok(network),
            None => self.create(),
        }
    }

    /// Removes the host's nftables table (the veths go with their namespaces).
    pub fn shutdown(&self) {
        self.ready.lock().unwrap().clear();
        if let Some(uplink) = &self.uplink {
            let _ = Command::new(&uplink.nft)
                .args(["delete", "table", "inet", &uplink.table])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn create(&self) -> std::io::Result<InstanceNetwork> {
        let lease = match &self.uplink {
            Some(uplink) => Some(uplink.block.lease().ok_or_else(|| {
                std::io::Error::other("every instance subnet of this host is in use")
            })?),
            None => None,
        };
        // Unique on the machine: the host's block (3 hex digits), then a counter.
        let veth = format!(
            "{VETH_PREFIX}{:03x}{:x}",
            self.uplink.as_ref().map_or(0, |u| u.block.number()),
            self.next_veth.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff
        );
        let inside = match (&self.uplink, &lease) {
            (Some(uplink), Some(lease)) => Some((uplink, uplink.addresses(lease.index()))),
            _ => None,
        };
        let host_pid = std::process::id();
        let plan = inside.as_ref().map(|(uplink, (host_ip, ns_ip))| {
            (
                uplink.ip.clone(),
                format!(
                    "link add eth0 type veth peer name {veth} netns {host_pid}\n\
                     addr add {ns_ip}/30 dev eth0\nlink set eth0 up\n\
                     route add default via {host_ip}\n"
                ),
            )
        });
        let (fd, listener) = std::thread::spawn(move || in_new_namespace(plan))
            .join()
            .map_err(|_| std::io::Error::other("network namespace thread panicked"))??;
        if let Some((uplink, (host_ip, _))) = inside {
            ip_batch(
                &uplink.ip,
                &format!("addr add {host_ip}/30 dev {veth}\nlink set {veth} up\n"),
            )?;
        }
        Ok(InstanceNetwork {
            listener,
            namespace: Some(Namespace { fd, _subnet: lease }),
        })
    }
}

/// Keeps the pool full while the host lives.
fn refill(networks: std::sync::Weak<Networks>) {
    loop {
        let Some(n) = networks.upgrade() else { return };
        let short = {
            let ready = n.ready.lock().unwrap();
            let ready = n
                .wanted
                .wait_timeout_while(ready, std::time::Duration::from_secs(1), |r| {
                    r.len() >= POOL_SIZE
                })
                .unwrap()
                .0;
            ready.len() < POOL_SIZE
        };
        if short {
            match n.create() {
                Ok(network) => n.ready.lock().unwrap().push(network),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prepare an instance network");
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
    }
}

/// Runs on a thread of its own, which it moves into a new network namespace: brings up the
/// loopback, binds the runtime API's listener there, and (for `isolated`) runs the `ip` plan
/// that adds the veth pair and the route; answers the namespace and the listener, which keep
/// the namespace alive after the thread ends.
fn in_new_namespace(plan: Option<(PathBuf, String)>) -> std::io::Result<(OwnedFd, TcpListener)> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    loopback_up()?;
    let listener = TcpListener::bind(RUNTIME_API_IN_NAMESPACE)?;
    let fd = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net")?);
    if let Some((ip, commands)) = plan {
        ip_batch(&ip, &commands)?;
    }
    Ok((fd, listener))
}

/// `ip link set lo up`, without a process.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed `ifreq` naming "lo".
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs `ip -batch -` with `commands` (in the calling thread's network namespace).
fn ip_batch(ip: &PathBuf, commands: &str) -> std::io::Result<()> {
    run_with_input(Command::new(ip).args(["-batch", "-"]), commands)
}

fn run_with_input(cmd: &mut Command, input: &str) -> std::io::Result<()> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Uplink {
    fn prepare(host_key: &str) -> Result<Self, String> {
        let ip = find_tool("ip").ok_or("`ip` (iproute2) is needed for --network isolated")?;
        let nft = find_tool("nft").ok_or(
            "`nft` (nftables) is needed for --network isolated; install it, or use --network none|host",
        )?;
        let block = Block::take("net", BLOCKS, SUBNETS_PER_BLOCK)?;
        let base = (100u32 << 24 | 64 << 16) + block.number() * SUBNETS_PER_BLOCK * 4;
        let table = format!("fgs_{host_key}");
        let net = |a: u32| std::net::Ipv4Addr::from(a).to_string();
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| format!("cannot enable IPv4 forwarding: {e}"))?;
        // Input from an instance to any host address is dropped (fgs's listeners, whatever
        // their address, and every other host service); so is traffic between instances.
        // The rest is forwarded and masqueraded.
        let ruleset = format!(
            "table inet {table}\ndelete table inet {table}\n\
             table inet {table} {{\n\
               chain input {{ type filter hook input priority -10; policy accept;\n\
                 iifname \"{VETH_PREFIX}*\" drop\n }}\n\
               chain forward {{ type filter hook forward priority -10; policy accept;\n\
                 iifname \"{VETH_PREFIX}*\" oifname \"{VETH_PREFIX}*\" drop\n\
                 iifname \"{VETH_PREFIX}*\" ip daddr {{ 127.0.0.0/8, 169.254.0.0/16 }} drop\n }}\n\
               chain postrouting {{ type nat hook postrouting priority 100; policy accept;\n\
                 ip saddr {}/{BLOCK_PREFIX} oifname != \"{VETH_PREFIX}*\" masquerade\n }}\n\
             }}\n",
            net(base)
        );
        run_with_input(Command::new(&nft).args(["-f", "-"]), &ruleset)
            .map_err(|e| format!("cannot install the instance firewall: {e}"))?;
        Ok(Self {
            ip,
            block,
            base,
            table,
            nft,
        })
    }

    /// The host's and the instance's address of subnet `index`.
    fn addresses(&self, index: u32) -> (String, String) {
        let first = self.base + index * 4;
        (
            std::net::Ipv4Addr::from(first + 1).to_string(),
            std::net::Ipv4Addr::from(first + 2).to_string(),
        )
    }
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
