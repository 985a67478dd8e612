//! How an artifact is archived between a step's files and its driver, and
//! the text form stored with an artifact value (`tar`, `tar:LEVEL`, `none`,
//! `zip`, `zstd`, `zstd:LEVEL`), which is also its serde form. Packing and
//! unpacking are the engine's.

use std::path::Path;

/// How an artifact is archived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// gzip over tar; `level` 0-9, `None` for the default (6). Argo's default.
    Tar {
        /// gzip `compressionLevel`.
        level: Option<u32>,
    },
    /// Uploaded as it is: a file, or a directory of files.
    None,
    /// A zip file (deflate).
    Zip,
    /// zstd over tar; `level` 1-22, `None` for the default (3).
    Zstd {
        /// zstd level.
        level: Option<i32>,
    },
}

impl Strategy {
    /// The file name Argo gives an artifact staged with this strategy.
    pub fn file_name(&self, artifact: &str, source: &Path) -> String {
        match self {
            Strategy::Tar { .. } => format!("{artifact}.tgz"),
            Strategy::Zip => format!("{artifact}.zip"),
            Strategy::Zstd { .. } => format!("{artifact}.tar.zst"),
            Strategy::None => source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

/// The text form, as stored with an artifact.
impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Tar { level: None } => f.write_str("tar"),
            Strategy::Tar { level: Some(l) } => write!(f, "tar:{l}"),
            Strategy::None => f.write_str("none"),
            Strategy::Zip => f.write_str("zip"),
            Strategy::Zstd { level: None } => f.write_str("zstd"),
            Strategy::Zstd { level: Some(l) } => write!(f, "zstd:{l}"),
        }
    }
}

impl Strategy {
    /// Parses the [`Display`](std::fmt::Display) form; an unreadable level is the default level.
    pub fn parse(text: &str) -> Option<Strategy> {
        let (kind, level) = text.split_once(':').map_or((text, None), |(k, l)| (k, Some(l)));
        Some(match kind {
            "tar" => Strategy::Tar { level: level.and_then(|l| l.parse().ok()) },
            "none" => Strategy::None,
            "zip" => Strategy::Zip,
            "zstd" => Strategy::Zstd { level: level.and_then(|l| l.parse().ok()) },
            _ => return None,
        })
    }
}

impl serde::Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strategy, D::Error> {
        let text = String::deserialize(d)?;
        Strategy::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown archive strategy {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips() {
        for s in [
            Strategy::Tar { level: None },
            Strategy::Tar { level: Some(9) },
            Strategy::None,
            Strategy::Zip,
            Strategy::Zstd { level: None },
            Strategy::Zstd { level: Some(19) },
        ] {
            assert_eq!(Strategy::parse(&s.to_string()), Some(s));
        }
        assert_eq!(Strategy::parse("rar"), None);
    }

    /// Runs stored before the strategy was typed hold the same text.
    #[test]
    fn the_serde_form_is_the_text_form() {
        let s = Strategy::Zstd { level: Some(19) };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""zstd:19""#);
        for text in ["tar", "tar:9", "none", "zip", "zstd", "zstd:19"] {
            let read: Strategy = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(read.to_string(), text);
        }
        assert!(serde_json::from_str::<Strategy>(r#""rar""#).is_err());
    }
}
