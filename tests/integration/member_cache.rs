//! The member cache: a rebuild with unchanged binaries copies their compressed members
//! from the cache instead of deflating them again, and its bundles are the same bytes as
//! a build without the cache. A damaged or cut entry is found, not used, and replaced.

use std::path::Path;

use crate::common::*;

/// Two binaries of several deflate blocks each, so each member spans blocks and padding.
fn project() -> Project {
    let project = Project::new(&format!(
        "{INVENTORY}\n[kube-controller-manager]\nbinary = \"kcm\"\n[kube-scheduler]\nbinary = \"ks\"\n"
    ));
    let code: Vec<u8> = (0..(5u32 << 20) / 2 + 333)
        .map(|i| {
            if i % 5 < 3 {
                (i / 100) as u8
            } else {
                (i.wrapping_mul(2_654_435_761) >> 23) as u8
            }
        })
        .collect();
    let reversed: Vec<u8> = code.iter().rev().copied().collect();
    project.write_binary(
        "kcm",
        &stand_in_with("kube-controller-manager", "1.20.2", &code),
    );
    project.write_binary("ks", &stand_in_with("kube-scheduler", "1.20.2", &reversed));
    project
}

/// Every file of `dist/` with its bytes, by name.
fn dist(project: &Project) -> Vec<(String, Vec<u8>)> {
    file_names(&project.path("dist"), &[])
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(project.path("dist").join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn build(project: &Project, extra: &[&str]) -> String {
    let out = project.build_with(extra);
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

fn entries(cache: &Path) -> Vec<String> {
    file_names(cache, &[])
}

#[test]
fn cold_warm_and_no_cache_builds_are_the_same_bytes() {
    let project = project();
    let cache = project.path("cache");
    let cache_arg = cache.to_str().unwrap();
    let cold = build(&project, &["--cache-dir", cache_arg]);
    assert!(cold.contains("0 of 2 compressed binaries reused"), "{cold}");
    let first = dist(&project);
    assert_eq!(
        first.len(),
        9,
        "{:?}",
        first.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let stored = entries(&cache);
    assert_eq!(stored.len(), 2, "one entry per binary: {stored:?}");
    assert!(stored.iter().all(|n| n.ends_with(".member")), "{stored:?}");
    assert_eq!(mode_of(&cache), 0o700);

    let warm = build(&project, &["--cache-dir", cache_arg]);
    assert!(warm.contains("2 of 2 compressed binaries reused"), "{warm}");
    assert!(dist(&project) == first, "a warm cache changed the bundles");
    assert_eq!(entries(&cache), stored);

    let none = build(&project, &["--no-cache"]);
    assert!(!none.contains("member cache"), "{none}");
    assert!(dist(&project) == first, "--no-cache changed the bundles");

    // The default folder comes from the environment, and a deleted cache is rebuilt.
    std::fs::remove_dir_all(&cache).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(["build", "-c", "cluster.toml", "-o", "dist"])
        .current_dir(project.dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("KUBE_BUNDLE_CACHE")
        .env("XDG_CACHE_HOME", project.path("xdg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/xdg/kube-bundle`: 0 of 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(entries(&project.path("xdg/kube-bundle")), stored);
    assert!(dist(&project) == first);
    // Only the binaries' members: no file of pki/ went into the cache.
    for entry in entries(&project.path("xdg/kube-bundle")) {
        let bytes = std::fs::read(project.path("xdg/kube-bundle").join(entry)).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"));
    }
}

#[test]
fn a_damaged_or_cut_entry_is_not_used_and_is_replaced() {
    let project = project();
    let cache = project.path("cache");
    let cache_arg = cache.to_str().unwrap();
    build(&project, &["--cache-dir", cache_arg]);
    let first = dist(&project);
    let names = entries(&cache);
    let good: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(cache.join(n)).unwrap())
        .collect();
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 3] = [
        ("one byte of the member changed", |b| b[4096] ^= 0x40),
        ("cut short", |b| b.truncate(b.len() / 2)),
        ("empty", |b| b.clear()),
    ];
    for (what, damage) in damages {
        let mut bad = good[0].clone();
        damage(&mut bad);
        std::fs::write(cache.join(&names[0]), &bad).unwrap();
        let log = build(&project, &["--cache-dir", cache_arg]);
        assert!(
            log.contains("failed its check") && log.contains(&names[0]),
            "{what}: {log}"
        );
        assert!(
            log.contains("1 of 2 compressed binaries reused"),
            "{what}: {log}"
        );
        assert!(dist(&project) == first, "{what}: the bundles changed");
        assert!(
            std::fs::read(cache.join(&names[0])).unwrap() == good[0],
            "{what}: not replaced"
        );
        // Replaced: the next build uses it again.
        let log = build(&project, &["--cache-dir", cache_arg]);
        assert!(
            log.contains("2 of 2") && !log.contains("failed"),
            "{what}: {log}"
        );
    }
    // An entry of the other binary under this one's name is refused too.
    std::fs::write(cache.join(&names[0]), &good[1]).unwrap();
    let log = build(&project, &["--cache-dir", cache_arg]);
    assert!(log.contains("its tag does not match"), "{log}");
    assert!(dist(&project) == first);
    // Nothing but the entries is left in the cache.
    assert_eq!(entries(&cache), names);
}

#[test]
fn a_cache_folder_that_cannot_be_made_is_a_warning_not_a_failure() {
    let project = project();
    project.write("not-a-folder", "x");
    let log = build(
        &project,
        &[
            "--cache-dir",
            project.path("not-a-folder/cache").to_str().unwrap(),
        ],
    );
    assert!(
        log.contains("warning: member cache `") && log.contains("building without it"),
        "{log}"
    );
    project
        .run_build(&["--no-cache", "--cache-dir", "x"])
        .status(2)
        .stderr_has("error: the argument '--no-cache' cannot be used with '--cache-dir <DIR>'\n")
        .check();
}

#[test]
fn a_build_without_binaries_makes_no_cache_folder() {
    let project = Project::new(INVENTORY);
    let log = build(&project, &["--cache-dir", "cache"]);
    assert!(!log.contains("member cache"), "{log}");
    assert!(!project.path("cache").exists());
    assert!(!project.path("member-cache").exists());
}

/// Two builds of the same cluster (a copy of pki/) into one empty cache at the same time:
/// both store both members, one after the other wins, and every entry left is whole.
#[test]
fn builds_storing_into_one_cache_at_once_leave_whole_entries() {
    let a = project();
    build(&a, &["--no-cache"]);
    let b = project();
    std::fs::create_dir_all(b.path("pki")).unwrap();
    run_ok(
        std::process::Command::new(tool("cp"))
            .arg("-a")
            .arg(a.path("pki/."))
            .arg(b.path("pki")),
    );
    let shared = tempfile::tempdir().unwrap();
    let cache = shared.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let spawn = |p: &Project| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
            .args([
                "build",
                "-c",
                "cluster.toml",
                "-o",
                "dist",
                "--cache-dir",
                cache_arg,
            ])
            .current_dir(p.dir.path())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a), spawn(&b));
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(
        dist(&a) == dist(&b),
        "the same pki/ and binaries, the same bundles"
    );
    let names = entries(&cache);
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    let log = build(&a, &["--cache-dir", cache_arg]);
    assert!(
        log.contains("2 of 2 compressed binaries reused") && !log.contains("failed"),
        "{log}"
    );
}
