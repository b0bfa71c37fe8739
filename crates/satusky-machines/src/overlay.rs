//! SideroLink overlay addresses (`siderolink pkg/wireguard/address.go`).
//!
//! One ULA /64 per installation id: the last 16 bytes of `sha256(installation_id)`,
//! byte 0 set to `0xfd`, byte 7 set to `0x03`, masked to /64. The server is `::1`;
//! nodes get random lower 64 bits, stable per machine UUID.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv6Addr;

use rand::Rng;
use sha2::{Digest, Sha256};

/// Byte 7 of a SideroLink overlay prefix.
pub const ULA_SIDEROLINK: u8 = 0x03;
/// Byte 7 of the virtual (WireGuard over gRPC) prefix.
pub const ULA_SIDEROLINK_VIRTUAL: u8 = 0x04;

/// A /64 overlay prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OverlayPrefix {
    network: Ipv6Addr,
}

impl OverlayPrefix {
    /// The SideroLink prefix for an installation id (`NetworkPrefix`).
    pub fn for_installation(installation_id: &str) -> Self {
        Self::with_purpose(installation_id, ULA_SIDEROLINK)
    }

    /// The virtual (gRPC tunnel) prefix for an installation id.
    pub fn virtual_for_installation(installation_id: &str) -> Self {
        Self::with_purpose(installation_id, ULA_SIDEROLINK_VIRTUAL)
    }

    fn with_purpose(installation_id: &str, purpose: u8) -> Self {
        let digest = Sha256::digest(installation_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[16..32]);
        bytes[0] = 0xfd;
        bytes[7] = purpose;
        bytes[8..].fill(0);
        Self {
            network: Ipv6Addr::from(bytes),
        }
    }

    /// The network address (lower 64 bits zero).
    pub fn network(&self) -> Ipv6Addr {
        self.network
    }

    /// The server's overlay address, the first address of the prefix (`::1`).
    pub fn server_address(&self) -> Ipv6Addr {
        self.with_interface_id(1)
    }

    /// The address with the given lower 64 bits.
    pub fn with_interface_id(&self, id: u64) -> Ipv6Addr {
        let hi = u128::from(self.network) & !u128::from(u64::MAX);
        Ipv6Addr::from(hi | u128::from(id))
    }

    /// Whether `addr` lies in this /64.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) >> 64 == u128::from(self.network) >> 64
    }
}

impl fmt::Display for OverlayPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/64", self.network)
    }
}

/// Hands out node addresses in an [`OverlayPrefix`], one per machine UUID, and gives
/// the same address back when the machine provisions again.
#[derive(Debug)]
pub struct AddressAllocator {
    prefix: OverlayPrefix,
    by_uuid: HashMap<String, Ipv6Addr>,
}

impl AddressAllocator {
    /// An empty allocator.
    pub fn new(prefix: OverlayPrefix) -> Self {
        Self {
            prefix,
            by_uuid: HashMap::new(),
        }
    }

    /// Seeds allocations persisted earlier, so addresses stay stable across restarts.
    pub fn with_existing(mut self, existing: impl IntoIterator<Item = (String, Ipv6Addr)>) -> Self {
        self.by_uuid.extend(existing);
        self
    }

    /// The prefix this allocator serves.
    pub fn prefix(&self) -> OverlayPrefix {
        self.prefix
    }

    /// The address of `uuid`, allocating a fresh random one on first use.
    pub fn allocate(&mut self, uuid: &str) -> Ipv6Addr {
        if let Some(addr) = self.by_uuid.get(uuid) {
            return *addr;
        }
        let mut rng = rand::thread_rng();
        let addr = loop {
            let id: u64 = rng.r#gen();
            if id <= 1 {
                continue;
            }
            let candidate = self.prefix.with_interface_id(id);
            if !self.by_uuid.values().any(|a| *a == candidate) {
                break candidate;
            }
        };
        self.by_uuid.insert(uuid.to_owned(), addr);
        addr
    }

    /// The address already allocated to `uuid`, if any.
    pub fn get(&self, uuid: &str) -> Option<Ipv6Addr> {
        self.by_uuid.get(uuid).copied()
    }

    /// Releases the address of `uuid`.
    pub fn release(&mut self, uuid: &str) -> Option<Ipv6Addr> {
        self.by_uuid.remove(uuid)
    }

    /// All allocations, for persistence.
    pub fn allocations(&self) -> impl Iterator<Item = (&str, Ipv6Addr)> {
        self.by_uuid.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_installation_id_gives_the_reference_prefix() {
        let p = OverlayPrefix::for_installation("");
        assert_eq!(p.to_string(), "fdae:41e4:649b:9303::/64");
        assert_eq!(p.server_address().to_string(), "fdae:41e4:649b:9303::1");
        assert_eq!(
            OverlayPrefix::virtual_for_installation("").to_string(),
            "fdae:41e4:649b:9304::/64"
        );
    }

    #[test]
    fn allocation_is_stable_per_uuid_and_inside_the_prefix() {
        let p = OverlayPrefix::for_installation("satusky");
        let mut a = AddressAllocator::new(p);
        let x = a.allocate("uuid-a");
        let y = a.allocate("uuid-b");
        assert_ne!(x, y);
        assert_eq!(a.allocate("uuid-a"), x);
        assert!(p.contains(x) && p.contains(y));
        assert_ne!(x, p.server_address());
    }
}
