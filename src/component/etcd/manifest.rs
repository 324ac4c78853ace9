//! etcd's object in manifest.json: the node folders its unit names (`--data-dir`,
//! `--wal-dir`). etcd makes them at its first start, so the bundle carries no file there
//! and `verify` accepts them by these values.

use serde::{Deserialize, Serialize};

use crate::manifest::Owned;
use crate::model::{Inventory, ManifestPart, Node};

pub(super) const PART: ManifestPart = ManifestPart {
    key: "etcd",
    write,
    read: Owned::reads_as::<ManifestEtcd>,
};

/// The object, under `etcd`; its keys are the row's data dirs' section keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEtcd {
    #[serde(rename = "data-dir")]
    pub data_dir: String,
    #[serde(rename = "wal-dir")]
    pub wal_dir: String,
}

fn write(inv: &Inventory, _node: &Node) -> Option<Owned> {
    let etcd = super::own(inv)?;
    let dirs = ManifestEtcd {
        data_dir: etcd.data_dir.clone(),
        wal_dir: etcd.wal_dir.clone(),
    };
    Some(Owned::of(&dirs).expect("two strings serialize"))
}
