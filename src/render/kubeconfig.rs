//! A component's kubeconfig, with the same content the tutorial's four `kubectl config`
//! commands produce: cluster `kubernetes` with the CA embedded, the component's user (its
//! row's `user`, such as `system:<name>`) with its certificate and key embedded, and a
//! context of that name set as current. Rendering only; no file access.

use base64::Engine;

/// The cluster entry's name, as the tutorial's `kubectl config set-cluster kubernetes`.
pub const CLUSTER: &str = "kubernetes";

pub fn render(server: &str, user: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    // Field order and layout follow `kubectl config view --raw`.
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: {CLUSTER}
contexts:
- context:
    cluster: {CLUSTER}
    user: {user}
  name: {user}
current-context: {user}
kind: Config
preferences: {{}}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn embeds_base64_of_each_pem() {
        let text = render(
            "https://10.0.0.1:6443",
            "system:kube-controller-manager",
            "CA",
            "CERT",
            "KEY",
        );
        assert!(text.contains("certificate-authority-data: Q0E=\n"));
        assert!(text.contains("client-certificate-data: Q0VSVA==\n"));
        assert!(text.contains("client-key-data: S0VZ\n"));
        assert!(text.contains("server: https://10.0.0.1:6443\n"));
        assert!(text.contains("current-context: system:kube-controller-manager\n"));
    }
}
