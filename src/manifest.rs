//! `manifest.json`, one schema for both directions: `bundle` writes it into every tarball
//! and `verify` reads it back. It names the node, the components, every file with its
//! mode and sha256, every certificate with subject, SANs, serial and validity, the node
//! paths the units name that the bundle does not carry and, for a component whose row
//! has a part of the manifest (`Component::manifest`), the object its module writes
//! under its key. This module knows no component: a row's object is an [`Owned`] here.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub node: String,
    #[serde(rename = "node-ip")]
    pub node_ip: String,
    /// The components this bundle installs, in start order.
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(rename = "kubernetes-version", default)]
    pub kubernetes_version: String,
    #[serde(rename = "kube-bundle-version", default)]
    pub kube_bundle_version: String,
    #[serde(default)]
    pub files: Vec<ManifestFile>,
    #[serde(default)]
    pub certificates: Vec<ManifestCert>,
    /// Files the units name that the bundle does not carry (a binary, when none is given).
    #[serde(default)]
    pub external: Vec<String>,
    /// The objects the bundle's components write, by their rows' keys, after the fields
    /// above in key order; a bundle whose components write none has no such key, so it
    /// keeps its bytes. Reading, it holds every key the fields above do not name.
    #[serde(flatten)]
    pub own: BTreeMap<String, Owned>,
}

impl Manifest {
    /// The object under `key`, when the manifest has one (`null` counts as none).
    pub fn own(&self, key: &str) -> Option<&Owned> {
        self.own.get(key).filter(|o| !o.is_null())
    }
}

/// A component's object in manifest.json, as its module writes and reads it. Its fields
/// keep the order they were written in (a `serde_json::Value` object would sort them,
/// which would change the bytes); a value that is not an object is kept as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Object(Vec<(String, Value)>),
    Other(Value),
}

impl Owned {
    /// `value` as its `Serialize` writes it, fields in that order.
    pub fn of<T: Serialize>(value: &T) -> serde_json::Result<Self> {
        serde_json::from_str(&serde_json::to_string(value)?)
    }

    /// The object read as `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        T::deserialize(self.value())
    }

    /// Whether it reads as `T`; for a row's [`crate::model::ManifestPart::read`].
    pub fn reads_as<T: serde::de::DeserializeOwned>(&self) -> Result<(), String> {
        self.parse::<T>().map(drop).map_err(|e| e.to_string())
    }

    /// The text of its field `key`, when that is a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self {
            Owned::Object(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.as_str()),
            Owned::Other(_) => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Owned::Other(Value::Null))
    }

    fn value(&self) -> Value {
        match self {
            Owned::Object(fields) => Value::Object(fields.iter().cloned().collect()),
            Owned::Other(v) => v.clone(),
        }
    }
}

impl Serialize for Owned {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Owned::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Owned::Other(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Owned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OwnedVisitor)
    }
}

struct OwnedVisitor;

impl<'de> Visitor<'de> for OwnedVisitor {
    type Value = Owned;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Owned, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            fields.push((k, v));
        }
        Ok(Owned::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Owned, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Owned::Other)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Owned, E> {
        Ok(Owned::Other(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Owned, E> {
        Ok(Owned::Other(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Owned, E> {
        Ok(Owned::Other(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Owned, E> {
        Ok(Owned::Other(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Owned, E> {
        Ok(Owned::Other(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Owned, E> {
        Ok(Owned::Other(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Owned, E> {
        Ok(Owned::Other(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Owned, D::Error> {
        Owned::deserialize(d)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub mode: String,
    pub size: u64,
    /// Of the file itself, also when it travels sealed.
    pub sha256: String,
    /// The file travels sealed with the node's seal key (see `seal`); absent when it does
    /// not, so bundles without sealing keep their bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestCert {
    pub path: String,
    #[serde(flatten)]
    pub summary: CertSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    #[serde(rename = "not-before")]
    pub not_before: String,
    #[serde(rename = "not-after")]
    pub not_after: String,
}

/// `epoch` as an RFC 3339 UTC time, as the documents kube-bundle writes carry it
/// (`org.opencontainers.image.created`, the SBOM's creation time).
pub fn rfc3339(epoch: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(own: &str) -> String {
        format!("{{\"node\": \"m1\", \"node-ip\": \"10.0.0.1\"{own}}}")
    }

    #[test]
    fn an_object_keeps_its_field_order_both_ways() {
        #[derive(Serialize)]
        struct Part {
            zulu: &'static str,
            alpha: Vec<&'static str>,
        }
        let mut m: Manifest = serde_json::from_str(&manifest("")).unwrap();
        assert!(m.own.is_empty());
        let part = Part {
            zulu: "z",
            alpha: vec!["a"],
        };
        m.own.insert("part".into(), Owned::of(&part).unwrap());
        let text = serde_json::to_string(&m).unwrap();
        assert!(
            text.ends_with(r#""external":[],"part":{"zulu":"z","alpha":["a"]}}"#),
            "{text}"
        );
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.own, m.own);
        assert_eq!(back.own("part").and_then(|o| o.str("zulu")), Some("z"));
    }

    #[test]
    fn null_is_no_object_and_other_values_are_kept() {
        let m: Manifest =
            serde_json::from_str(&manifest(r#", "a": null, "b": 5, "c": [1]"#)).unwrap();
        assert_eq!(m.own("a"), None);
        assert_eq!(m.own("b"), Some(&Owned::Other(5.into())));
        assert_eq!(m.own("c").and_then(|o| o.str("x")), None);
        assert!(m.own("b").unwrap().reads_as::<Vec<u8>>().is_err());
    }
}
