//! `make bench` is not part of CI (it takes minutes), so this runs the same script on a
//! tiny case to catch it breaking: one run, two masters, stand-in binaries of 2 MiB
//! (controller-manager, apiserver), 1 MiB (scheduler) and 512 KiB (etcd, etcdctl).

use std::process::Command;

use crate::common::*;

#[test]
fn the_bench_script_runs_both_flows_and_prints_the_table() {
    let scratch = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench.sh");
    let out = Command::new(tool("bash"))
        .arg(script)
        .env("KUBE_BUNDLE", env!("CARGO_BIN_EXE_kube-bundle"))
        .env("BENCH_RUNS", "1")
        .env("BENCH_NODES", "2")
        .env("BENCH_BINARY_MB", "2")
        .env("BENCH_DIR", scratch.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 2 |")).collect();
    assert_eq!(
        rows.len(),
        8,
        "none/binary/both/all × fresh/rebuild:\n{table}"
    );
    assert!(table.contains("| 2 | both | fresh |"), "{table}");
    assert!(table.contains("| 2 | all | rebuild |"), "{table}");
    assert!(
        table.contains("kube-bundle peak RSS: ") && table.contains("under the 64 MiB limit"),
        "{table}"
    );
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(
            cells[4].ends_with(" ms") && cells[5].ends_with(" ms"),
            "{row}"
        );
        assert!(
            cells[6].ends_with('x') && cells[8].ends_with("MiB"),
            "{row}"
        );
        // The two limits beside it, from the same runs, and the load they ran under.
        assert!(
            cells[10].ends_with(" ms") && cells[12].ends_with(" ms"),
            "{row}"
        );
        let ratio = |c: &str| -> f64 {
            c.split('x')
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("{row}"))
        };
        let ms = |c: &str| -> f64 { c.trim_end_matches(" ms").parse().unwrap() };
        assert!(
            (ratio(cells[11]) - ms(cells[4]) / ms(cells[10])).abs()
                < 0.05 * ratio(cells[11]) + 0.01,
            "{row}"
        );
        assert!(
            (ratio(cells[13]) - ms(cells[4]) / ms(cells[12])).abs()
                < 0.05 * ratio(cells[13]) + 0.01,
            "{row}"
        );
        let rebuild_with_binaries = row.contains("| rebuild |") && !row.contains("| none |");
        assert_eq!(cells[13].contains("≤1.5x"), rebuild_with_binaries, "{row}");
        assert!(cells[14].contains(" → "), "{row}");
    }
    // pigz wrote one copy of the compressed binaries per master: they decompress to the
    // binaries, one after the other.
    let node = scratch.path().join("n2-both/pigz/node-2");
    let plain = run_ok(
        Command::new(tool("sh"))
            .arg("-c")
            .arg(format!("gzip -dc {} | sha256sum", node.display())),
    );
    let both = run_ok(Command::new(tool("sh")).arg("-c").arg(format!(
        "cat {0}/generated-binary {0}/generated-scheduler | sha256sum",
        scratch.path().display()
    )));
    assert_eq!(plain, both);
    // The copy is kube-bundle's output, file for file.
    assert_eq!(
        sha256sum_checked(&scratch.path().join("n2-all/cp/dist")),
        sha256sum_checked(&scratch.path().join("n2-all/kb/dist"))
    );
    // Rebuilds reused the binaries compressed by the fresh builds.
    assert!(scratch.path().join("member-cache").is_dir());
    // Both flows really produced bundles.
    let tut = scratch
        .path()
        .join("n2-binary/tut/out/kube-controller-manager-m2.tar.gz");
    let listing = run_ok(Command::new(tool("tar")).arg("-tzf").arg(&tut));
    assert!(listing.contains("generated-binary"), "{listing}");
    assert!(scratch
        .path()
        .join("n2-binary/kb/dist/control-plane-m2.tar.gz")
        .exists());
    // The two-component case carries both binaries on both sides.
    let tut = scratch
        .path()
        .join("n2-both/tut/out/kube-controller-manager-m2.tar.gz");
    let listing = run_ok(Command::new(tool("tar")).arg("-tzf").arg(&tut));
    assert!(
        listing.contains("generated-binary") && listing.contains("generated-scheduler"),
        "{listing}"
    );
    let ours = scratch
        .path()
        .join("n2-both/kb/dist/control-plane-m2.tar.gz");
    let listing = run_ok(Command::new(tool("tar")).arg("-tzf").arg(&ours));
    assert!(
        listing.contains("rootfs/opt/k8s/bin/kube-scheduler")
            && listing.contains("rootfs/opt/k8s/bin/kube-controller-manager"),
        "{listing}"
    );
    // The whole control plane: five binaries in every tarball, on both sides.
    let tut = scratch
        .path()
        .join("n2-all/tut/out/control-plane-m2.tar.gz");
    let listing = run_ok(Command::new(tool("tar")).arg("-tzf").arg(&tut));
    for file in [
        "generated-etcd",
        "generated-etcdctl",
        "generated-apiserver",
        "generated-binary",
        "generated-scheduler",
        "control-plane-m2/etcd.service",
        "control-plane-m2/kube-apiserver.service",
        "control-plane-m2/encryption-config.yaml",
        "control-plane-m2/audit-policy.yaml",
        "control-plane-m2/etcd-cert/etcd.pem",
        "control-plane-m2/cert/kubernetes.pem",
        "control-plane-m2/cert/proxy-client.pem",
    ] {
        assert!(
            listing.lines().any(|l| l == file),
            "{file} missing:\n{listing}"
        );
    }
    let ours = scratch
        .path()
        .join("n2-all/kb/dist/control-plane-m2.tar.gz");
    let listing = run_ok(Command::new(tool("tar")).arg("-tzf").arg(&ours));
    for bin in [
        "etcd",
        "etcdctl",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        assert!(
            listing.contains(&format!("rootfs/opt/k8s/bin/{bin}\n")),
            "{bin} missing:\n{listing}"
        );
    }
    // The stand-ins are five different files.
    let mut shas: Vec<String> = [
        "generated-etcd",
        "generated-etcdctl",
        "generated-apiserver",
        "generated-binary",
        "generated-scheduler",
    ]
    .iter()
    .map(|f| sha256_file(&scratch.path().join(f)))
    .collect();
    shas.sort();
    shas.dedup();
    assert_eq!(shas.len(), 5);
}

/// An unknown case is refused before anything runs.
#[test]
fn the_bench_script_refuses_an_unknown_case() {
    let scratch = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench.sh");
    let out = Command::new(tool("bash"))
        .arg(script)
        .env("KUBE_BUNDLE", env!("CARGO_BIN_EXE_kube-bundle"))
        .env("BENCH_CASES", "binary everything")
        .env("BENCH_DIR", scratch.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown case `everything`"),
        "{}",
        stderr(&out)
    );
}

/// `make bench`'s upload measurement on a tiny case: two masters, a 2 MiB stand-in.
#[test]
fn the_push_bench_measures_uploads_against_one_binary_plus_node_members() {
    let scratch = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench-push.sh");
    let out = Command::new(tool("bash"))
        .arg(script)
        .env("KUBE_BUNDLE", env!("CARGO_BIN_EXE_kube-bundle"))
        .env("BENCH_PUSH_NODES", "2")
        .env("BENCH_BINARY_MB", "2")
        .env("BENCH_FETCH_RUNS", "2")
        .env("BENCH_DIR", scratch.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let table = stdout(&out);
    let row = table
        .lines()
        .find(|l| l.starts_with("| 2 |"))
        .unwrap_or_else(|| panic!("no row for 2 masters:\n{table}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(
        cells[2].ends_with("MiB") && cells[3].contains(" + "),
        "{row}"
    );
    assert!(
        cells[5].ends_with("met"),
        "the upload is within 1.2x: {row}"
    );
    // The pushed storage holds the binary once: far less than the two bundles.
    let mib = |c: &str| c.trim_end_matches(" MiB").parse::<f64>().unwrap();
    assert!(mib(cells[11]) < mib(cells[6]) * 0.75, "{row}");
    // The same dist pushed again (the script fails if that uploads anything), timed.
    assert!(
        cells[8].contains(" ms (<1000 ms ") && cells[8].ends_with(')'),
        "{row}"
    );
    // pull and fetch.sh, each beside curl plus sha256sum of the same blobs, timed.
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| m1 |"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let getters: Vec<&str> = rows.iter().map(|c| c[3]).collect();
    assert_eq!(
        getters,
        ["kube-bundle pull --node", "fetch.sh --no-unpack"],
        "{table}"
    );
    for cells in &rows {
        assert!(mib(cells[2]) > 0.5, "{cells:?}");
        assert!(
            cells[4].ends_with(" ms") && cells[5].ends_with(" ms") && cells[6].ends_with('x'),
            "{cells:?}"
        );
        assert!(
            cells[7].starts_with("≤1.3x ") && cells[7].ends_with("(2 runs each)"),
            "{cells:?}"
        );
    }
}
