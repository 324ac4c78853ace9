//! `dist/fetch.sh`: the script that gets one node's bundle out of the registry with curl,
//! sha256sum and tar alone. The template is `bundle-templates/fetch.sh.hbs`; this module
//! fills in the media types, annotation keys and bundle name prefix from `oci` and
//! `component`, so the script and `push` cannot drift apart. It writes nothing itself.

use handlebars::Handlebars;
use serde_json::json;

use crate::error::{Error, Result};
use crate::store::oci;

const TEMPLATE: &str = include_str!("../../bundle-templates/fetch.sh.hbs");

/// The text of fetch.sh.
pub fn script() -> Result<String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let template_error = |e: &dyn std::fmt::Display| Error::Template {
        name: "fetch.sh".into(),
        message: e.to_string(),
    };
    hb.register_template_string("fetch.sh", TEMPLATE)
        .map_err(|e| template_error(&e))?;
    hb.render(
        "fetch.sh",
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "media_manifest": oci::MEDIA_MANIFEST,
            "media_index": oci::MEDIA_INDEX,
            "media_member": oci::MEDIA_MEMBER,
            "artifact_set": oci::ARTIFACT_SET,
            "artifact_bundle": oci::ARTIFACT_BUNDLE,
            "annotation_node": oci::ANNOTATION_NODE,
            "annotation_bundle": oci::ANNOTATION_BUNDLE,
            "annotation_digest": oci::ANNOTATION_BUNDLE_DIGEST,
            "bundle_prefix": crate::component::BUNDLE_PREFIX,
        }),
    )
    .map_err(|e| template_error(&e))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    #[test]
    fn the_script_names_the_artifact_types_push_writes() {
        let s = super::script().unwrap();
        assert!(s.starts_with("#!/usr/bin/env bash\n"));
        assert!(s.contains(&format!(
            "readonly ARTIFACT_BUNDLE=\"{}\"",
            crate::store::oci::ARTIFACT_BUNDLE
        )));
        assert!(s.contains("readonly ANNOTATION_DIGEST=\"io.kube-bundle.bundle.digest\""));
        assert!(!s.contains("{{"));
    }
}
