//! `FERRY_RESOLVE`: send chosen host names to chosen addresses without
//! touching `/etc/hosts` — for virtual-hosted buckets on a test server or a
//! split-horizon private endpoint. Format: `SUFFIX=IP[,SUFFIX=IP...]`; a host
//! equal to SUFFIX or ending in `.SUFFIX` resolves to IP, any other host
//! through the system resolver.

use object_store::client::{DnsFuture, DnsResolver};
use std::net::IpAddr;

/// The environment variable read by [`Overrides::from_env`].
pub const RESOLVE_ENV: &str = "FERRY_RESOLVE";

/// Host-suffix → address overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides(Vec<(String, IpAddr)>);

impl Overrides {
    /// Parses `SUFFIX=IP,...`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (suffix, ip) =
                entry.split_once('=').ok_or_else(|| format!("{RESOLVE_ENV}: {entry:?} is not SUFFIX=IP"))?;
            let ip = ip.trim().parse().map_err(|_| format!("{RESOLVE_ENV}: {ip:?} is not an IP address"))?;
            out.push((suffix.trim().trim_start_matches('.').to_ascii_lowercase(), ip));
        }
        Ok(Overrides(out))
    }

    /// The overrides in the environment, if any.
    pub fn from_env() -> Result<Option<Self>, String> {
        match ferry_sdk::env::text(RESOLVE_ENV).map_err(|e| e.to_string())? {
            Some(spec) if !spec.trim().is_empty() => Overrides::parse(&spec).map(Some),
            _ => Ok(None),
        }
    }

    fn lookup(&self, host: &str) -> Option<IpAddr> {
        let host = host.to_ascii_lowercase();
        self.0.iter().find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}"))).map(|(_, ip)| *ip)
    }
}

impl DnsResolver for Overrides {
    fn resolve(&self, host: &str) -> DnsFuture {
        let fixed = self.lookup(host);
        let host = host.to_string();
        Box::pin(async move {
            if let Some(ip) = fixed {
                return Ok(vec![ip]);
            }
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_whole_labels() {
        let o = Overrides::parse("s3.test=127.0.0.1, .oss.test=127.0.0.2").unwrap();
        assert_eq!(o.lookup("bucket.s3.test"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(o.lookup("S3.TEST"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(o.lookup("bucket.xs3.test"), None);
        assert_eq!(o.lookup("b.oss.test"), Some("127.0.0.2".parse().unwrap()));
        assert!(Overrides::parse("nohost").unwrap_err().contains("SUFFIX=IP"));
    }
}
