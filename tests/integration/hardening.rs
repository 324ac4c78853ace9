//! The builder and verify against a hostile user: forged archive entries, archives built
//! to exhaust memory, names that drive the terminal, leftovers of killed builds, a build
//! racing another, a half-written CA and a write that fails half-way.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::archive::*;
use crate::common::*;

/// The test inventory with ECDSA keys, so builds take milliseconds.
pub fn fast_inventory() -> String {
    INVENTORY.replace("[pki]\n", "[pki]\nkey-algorithm = \"ecdsa-p256\"\n")
}

/// Runs `args` with the address space capped, so an archive that makes verify allocate
/// gigabytes ends it (abort) instead of passing.
pub fn capped(project: &Project, args: &[&str]) -> Output {
    Command::new(tool("bash"))
        .arg("-c")
        .arg("ulimit -v 1048576; exec \"$@\"")
        .arg("capped")
        .arg(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(args)
        .current_dir(project.dir.path())
        .output()
        .unwrap()
}

/// A built project and its first bundle's members.
fn built() -> (Project, PathBuf, Vec<Member>) {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let tarball = built_bundles(&project.path("dist")).remove(0);
    let members = read_members(&tarball);
    (project, tarball, members)
}

/// Packs `members` as `hostile.tar.gz`, verifies it and returns what verify found; it
/// must find something (exit 1).
fn findings_of_forged(project: &Project, members: &[Member]) -> String {
    let hostile = project.path("hostile.tar.gz");
    write_tar_gz(&hostile, members);
    let out = project.verify(&[&hostile]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stdout(&out)
}

/// `members` with `change` applied to those whose name ends with `suffix`.
fn edited(members: &[Member], suffix: &str, change: impl Fn(&mut Member)) -> Vec<Member> {
    let mut out = members.to_vec();
    out.iter_mut()
        .filter(|m| m.name().ends_with(suffix))
        .for_each(change);
    out
}

fn bundle_name(tarball: &Path) -> String {
    tarball.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn links_devices_and_fifos_are_findings() {
    let (project, tarball, members) = built();
    let top = top_of(&members);
    let cases = [
        (
            "rootfs/etc/kubernetes/cert/ca.pem",
            b'2',
            "/etc/shadow",
            "a symbolic link",
        ),
        ("rootfs/opt", b'2', "/tmp/victim", "a symbolic link"),
        ("rootfs/etc/passwd", b'1', "/etc/passwd", "a hard link"),
        ("rootfs/dev-null", b'3', "", "a character device"),
        ("rootfs/disk", b'4', "", "a block device"),
        ("rootfs/pipe", b'6', "", "a FIFO"),
    ];
    let hostile = project.path("hostile.tar.gz");
    for (rel, kind, link, what) in cases {
        let mut forged = members.clone();
        forged.push(Member::special(&format!("{top}/{rel}"), kind, link));
        write_tar_gz(&hostile, &forged);
        let out = project.verify(&[&hostile]);
        assert_eq!(out.status.code(), Some(1), "{rel}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!(
                "hostile.tar.gz: {rel}: is {what}, but a bundle holds only regular files and folders\n"
            ),
        );
    }
    // The top folder itself as a link.
    let mut forged = members.clone();
    forged.insert(0, Member::special(&top, b'2', "/etc"));
    write_tar_gz(&hostile, &forged);
    let out = project.verify(&[&hostile]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("hostile.tar.gz: {top}: is a symbolic link")),
        "{}",
        stdout(&out)
    );
    // The untouched bundle still verifies clean.
    let out = project.verify(&[&tarball]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn members_leaving_the_top_folder_are_findings() {
    let (project, _, members) = built();
    let top = top_of(&members);
    let hostile = project.path("hostile.tar.gz");
    // Listed in SHA256SUMS and manifest.json, as a forger would leave it.
    let mut forged = members.clone();
    list_in_bundle(&mut forged, "rootfs/../../../../tmp/x", 0o644, b"x\n");
    forged.push(Member::file(
        &format!("{top}/rootfs/../../../../tmp/x"),
        0o644,
        b"x\n",
    ));
    write_tar_gz(&hostile, &forged);
    let out = project.verify(&[&hostile]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "hostile.tar.gz: {top}/rootfs/../../../../tmp/x: leaves the bundle's top folder"
        )),
        "{}",
        stdout(&out)
    );

    let mut forged = members.clone();
    forged.push(Member::file("/tmp/y", 0o644, b"y\n"));
    write_tar_gz(&hostile, &forged);
    let out = project.verify(&[&hostile]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "hostile.tar.gz: /tmp/y: leaves the bundle's top folder (an absolute path or `..`)\n"
    );
}

#[test]
fn dot_slash_names_read_the_same_as_without() {
    let (project, tarball, members) = built();
    let repacked = project.path(&bundle_name(&tarball));
    let dotted: Vec<Member> = members
        .iter()
        .map(|m| Member {
            name: [b"./".as_slice(), &m.name].concat(),
            ..m.clone()
        })
        .collect();
    write_tar_gz(&repacked, &dotted);
    let out = project.verify(&[&repacked]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");

    // A change in a repacked bundle is reported as that change, nothing else.
    let unit = "rootfs/etc/systemd/system/kube-controller-manager.service";
    let changed = edited(&dotted, unit, |m| m.data.extend(b"# changed\n"));
    write_tar_gz(&repacked, &changed);
    let out = project.verify(&[&repacked]);
    let name = bundle_name(&tarball);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!(
            "{name}: {unit}: does not match its checksum in SHA256SUMS\n\
             {name}: {unit}: does not match its sha256 in manifest.json\n"
        )
    );
}

#[test]
fn a_repeated_member_is_a_finding() {
    let (project, _, members) = built();
    let mut forged = members.clone();
    let again = members
        .iter()
        .find(|m| m.name().ends_with("/ca.pem"))
        .unwrap()
        .clone();
    forged.push(again);
    assert_eq!(
        findings_of_forged(&project, &forged),
        "hostile.tar.gz: rootfs/etc/kubernetes/cert/ca.pem: appears more than once in the archive; tar keeps the last\n"
    );
}

#[test]
fn special_mode_bits_are_a_finding_even_where_no_manifest_describes_the_file() {
    let (project, _, members) = built();
    let forged = edited(&members, "/SHA256SUMS", |m| m.mode = 0o4755);
    assert_eq!(
        findings_of_forged(&project, &forged),
        "hostile.tar.gz: SHA256SUMS: has mode 4755, with bits beyond rwx (setuid, setgid, sticky or a file type)\n"
    );
}

/// gzip members that together inflate to `len` zero bytes, from one compressed block.
fn zeros(len: u64) -> Vec<u8> {
    let chunk: u64 = 64 << 20;
    let member = gzip(&vec![0u8; chunk.min(len) as usize]);
    let mut out = Vec::new();
    for _ in 0..len.div_ceil(chunk) {
        out.extend(&member);
    }
    out
}

#[test]
fn archives_that_would_exhaust_memory_are_refused_naming_the_limit() {
    let project = Project::new(&fast_inventory());
    let giant: u64 = 1 << 30;
    let trailer = gzip(&[header_block(b"x/y", b'0', 0o644, 0, b""), vec![0; 1024]].concat());

    // A GNU long name of 1 GiB, all there.
    let mut bomb = gzip(&header_block(b"././@LongLink", b'L', 0o644, giant, b""));
    bomb.extend(zeros(giant));
    bomb.extend(&trailer);
    std::fs::write(project.path("name.tar.gz"), &bomb).unwrap();
    // A PAX header of 1 GiB.
    let mut bomb = gzip(&header_block(b"x/PaxHeader", b'x', 0o644, giant, b""));
    bomb.extend(zeros(giant));
    bomb.extend(&trailer);
    std::fs::write(project.path("pax.tar.gz"), &bomb).unwrap();
    // Twenty files of 4 MiB each: each small enough to keep, too many together.
    let file = 4u64 << 20;
    let data = zeros(file);
    let mut bomb = Vec::new();
    for i in 0..20 {
        let name = format!("x/f{i}");
        bomb.extend(gzip(&header_block(name.as_bytes(), b'0', 0o644, file, b"")));
        bomb.extend(&data);
    }
    bomb.extend(&trailer);
    std::fs::write(project.path("many.tar.gz"), &bomb).unwrap();

    for (file, limit) in [
        (
            "name.tar.gz",
            "holds a member name over verify's limit of 4 KiB",
        ),
        (
            "pax.tar.gz",
            "holds a PAX header over verify's limit of 64 KiB",
        ),
        ("many.tar.gz", "over verify's limit of 64 MiB"),
    ] {
        let out = capped(&project, &["verify", file]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with(&format!("error: `{file}`: ")), "{err}");
        assert!(err.contains(limit), "{file}: {err}");
        assert!(err.len() < 1000, "the error quotes what it refused: {err}");
    }
}

#[test]
fn bundle_names_are_printed_escaped() {
    let (project, _, members) = built();
    let top = top_of(&members);
    let mut forged = members.clone();
    forged.push(Member::file(
        &format!("{top}/rootfs/x\nforged.tar.gz: all: fine\u{1b}[2K\u{1b}[1A"),
        0o644,
        b"x",
    ));
    let text = findings_of_forged(&project, &forged);
    assert!(
        !text.contains('\u{1b}'),
        "raw escape code printed: {text:?}"
    );
    assert_eq!(
        text,
        "hostile.tar.gz: rootfs/x\\nforged.tar.gz: all: fine\\u{1b}[2K\\u{1b}[1A: is in the bundle but not in SHA256SUMS\n\
         hostile.tar.gz: rootfs/x\\nforged.tar.gz: all: fine\\u{1b}[2K\\u{1b}[1A: is not described in manifest.json\n"
    );
}

#[test]
fn an_oversized_manifest_is_too_large_not_missing() {
    let (project, _, members) = built();
    let forged = edited(&members, "/manifest.json", |m| m.data = vec![b' '; 5 << 20]);
    let text = findings_of_forged(&project, &forged);
    assert!(
        text.contains(
            "hostile.tar.gz: manifest.json: is larger than the 4 MiB verify reads of a file"
        ),
        "{text}"
    );
    assert!(!text.contains("manifest.json: is missing"), "{text}");
}

#[test]
fn a_warning_window_past_the_year_9999_is_bad_input() {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let bundles = built_bundles(&project.path("dist"));
    let bundle = bundles[0].to_str().unwrap();
    for args in [
        vec!["verify", "--warn-within", "3000000d", bundle],
        vec!["certs", "-c", "cluster.toml", "--warn-within", "3000000d"],
    ] {
        let out = project.kube_bundle(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "error: --warn-within: 3000000d reaches past the year 9999\n\
             hint: give a window such as `30d` or `365d`\n"
        );
    }
}

#[test]
fn a_toml_error_is_printed_once() {
    let project = Project::new("[cluster]\nkubernetes-version = [\n");
    let out = project.build();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.matches("TOML parse error").count(), 1, "{err}");
    assert!(!err.contains("caused by"), "{err}");
}

#[test]
fn a_pki_file_that_cannot_be_read_is_an_io_failure_naming_it() {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let leaf = leaf_certificates(&project.path("pki")).remove(0);
    // Unreadable even for root: a folder where the file was.
    std::fs::remove_file(&leaf).unwrap();
    std::fs::create_dir(&leaf).unwrap();
    let rel = leaf
        .strip_prefix(project.dir.path())
        .unwrap()
        .display()
        .to_string();
    let out = project.build();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("error: failed to read from file `{rel}`: Is a directory (os error 21)\n")
    );
}

#[test]
fn a_missing_or_binary_environment_file_is_bad_input() {
    let project = Project::new(&fast_inventory());
    std::fs::write(project.path("env.sh"), [0xff, 0xfe, b'\n']).unwrap();
    for (file, says) in [
        ("missing.sh", "No such file or directory"),
        ("env.sh", "stream did not contain valid UTF-8"),
    ] {
        let out = project.kube_bundle(&["init", "--from-env", file, "-o", "-"]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: `{file}`: ")) && err.contains(says),
            "{err}"
        );
    }
}

/// Holds an exclusive lock on `path` (a folder or a file) until dropped.
fn hold_lock(path: &Path) -> std::fs::File {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.try_lock().unwrap();
    file
}

#[test]
fn a_second_build_waits_for_the_lock_or_fails_naming_it() {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let dist_before = snapshot(&project.path("dist"));
    // pki/ is locked as itself, the output folder through the folder it lives in.
    for (held, named) in [("pki", "`pki`"), (".", "`dist`")] {
        let lock = hold_lock(&project.path(held));
        let start = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
            .args(["build", "-c", "cluster.toml", "-o", "dist"])
            .env("KUBE_BUNDLE_LOCK_WAIT", "1")
            .current_dir(project.dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{held}: {}", stderr(&out));
        assert!(start.elapsed() >= std::time::Duration::from_secs(1));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "error: {named} is in use by another kube-bundle build (waited 1s for it)\nhint: "
            )),
            "{err}"
        );
        assert_eq!(snapshot(&project.path("dist")), dist_before);

        // Released while the build waits: it goes ahead.
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(700));
            drop(lock);
        });
        let start = std::time::Instant::now();
        let out = project.build();
        release.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(start.elapsed() >= std::time::Duration::from_millis(700));
        assert_eq!(snapshot(&project.path("dist")), dist_before);
    }
}

#[test]
fn leftovers_of_killed_builds_are_cleaned_by_the_next() {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let dist_before = snapshot(&project.path("dist"));
    let node_dir = std::fs::read_dir(project.path("pki"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let leftovers = [
        project.path(".dist.tmp-99999/bundle.tar.gz"),
        project.path(".dist.old/bundle.tar.gz"),
        project.path(".dist.old-99998/bundle.tar.gz"),
        project.path("pki/ca-key.tmp-99999"),
        project.path("pki/sa.tmp-99999"),
        node_dir.join("kube-controller-manager.tmp-99999"),
    ];
    for path in &leftovers {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "partial").unwrap();
    }
    let out = project.build();
    assert!(out.status.success(), "{}", stderr(&out));
    for path in &leftovers {
        assert!(!path.exists(), "{} is left", path.display());
    }
    for dir in [".dist.tmp-99999", ".dist.old", ".dist.old-99998"] {
        assert!(!project.path(dir).exists(), "{dir} is left");
    }
    assert_eq!(snapshot(&project.path("dist")), dist_before);

    // Killed between its two renames: the previous output waits as `.dist.old-<pid>`
    // and there is no dist/. The next build puts it back before it replaces it.
    std::fs::rename(project.path("dist"), project.path(".dist.old-4242")).unwrap();
    let out = project.build();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no bundle changed"),
        "{}",
        stderr(&out)
    );
    assert!(!project.path(".dist.old-4242").exists());
    assert_eq!(snapshot(&project.path("dist")), dist_before);
}

#[test]
fn a_ca_written_half_way_is_recovered_from_its_temporary_file() {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let ca = std::fs::read(project.path("pki/ca.pem")).unwrap();
    // What a build killed just before it renamed ca.pem into place leaves.
    std::fs::rename(project.path("pki/ca.pem"), project.path("pki/ca.tmp-4242")).unwrap();
    std::fs::write(project.path("pki/ca.tmp-4243"), &ca[..ca.len() / 2]).unwrap();
    std::fs::remove_dir_all(project.path("dist")).unwrap();
    let out = project.build();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recovered `pki/ca.pem` from `pki/ca.tmp-4242`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(project.path("pki/ca.pem")).unwrap(), ca);
    assert_eq!(std::fs::read(project.path("dist/ca.pem")).unwrap(), ca);
    assert!(!project.path("pki/ca.tmp-4242").exists());
    assert!(!project.path("pki/ca.tmp-4243").exists());
}

/// Runs a build with files limited to `kib` KiB, a write past it failing with EFBIG.
fn build_with_file_limit(project: &Project, kib: usize) -> Output {
    Command::new(tool("bash"))
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$@\""))
        .arg("limited")
        .arg(env!("CARGO_BIN_EXE_kube-bundle"))
        .args(["build", "-c", "cluster.toml", "-o", "dist"])
        .current_dir(project.dir.path())
        .output()
        .unwrap()
}

#[test]
fn a_key_write_that_fails_leaves_no_temporary_file() {
    let project = Project::new(&fast_inventory());
    let out = build_with_file_limit(&project, 0);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: failed to write to file `pki/"),
        "{err}"
    );
    assert!(err.contains("File too large (os error 27)"), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    // A first build that fails leaves neither a temporary file nor the pki/ it made.
    assert!(!project.path("pki").exists(), "{err}");
    assert!(!project.path("dist").exists());
}

/// Offsets where each gzip member of `bytes` ends.
fn member_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        rest = d.into_inner();
        ends.push(bytes.len() - rest.len());
    }
    ends
}

#[test]
fn a_write_failing_half_way_is_one_error_naming_the_bundle() {
    // Incompressible text, so the tarball's first member (the unit carries it) and the
    // shared binary member are each well over the 64 KiB write buffer.
    let mut state = 0x2545_f491_u32;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                b'a' + (state % 26) as u8
            })
            .collect()
    };
    let gates = String::from_utf8(noise(200_000)).unwrap();
    let project = Project::new(&format!(
        "{}\n[kube-controller-manager]\nbinary = \"kcm\"\n\n\
         [kube-controller-manager.extra-args]\nfeature-gates = \"{gates}\"\n",
        fast_inventory()
    ));
    project.write_binary(
        "kcm",
        &stand_in_with("kube-controller-manager", "1.20.2", &noise(400_000)),
    );
    project.build_ok();
    let dist_before = snapshot(&project.path("dist"));
    let tarball = built_bundles(&project.path("dist")).remove(0);
    let bytes = std::fs::read(&tarball).unwrap();
    let ends = member_ends(&bytes);
    assert_eq!(ends.len(), 3, "header, shared binary and trailer members");
    let (first, shared) = (ends[0], ends[1] - ends[0]);
    // A file size limit halfway through the shared member: its scratch copy fits, and
    // the tarball's write fails while the member is being copied in (what used to panic).
    let limit = (first + shared / 2) / 1024 * 1024;
    assert!(
        limit >= shared && limit > first + (64 << 10) && limit + (64 << 10) < first + shared,
        "first member {first}, shared member {shared}: no room for the test"
    );
    let limit_kib = limit / 1024;
    let out = build_with_file_limit(&project, limit_kib);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with(&format!(
            "error: writing `dist/{}`: ",
            bundle_name(&tarball)
        )) && errors[0].ends_with("File too large (os error 27)"),
        "{err}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(project.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dist.tmp") || n.starts_with(".dist.old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(snapshot(&project.path("dist")), dist_before);
}

/// The review's M6: with umask 000, `dist/`, its parent and the parents of `pki/` came out
/// world-writable, so any local user could swap the bundles or the PKI.
#[test]
fn no_folder_is_world_writable_whatever_the_umask() {
    let project = Project::new(&format!("{}\n", fast_inventory()).replacen(
        "[pki]\n",
        "[pki]\ndir = \"secrets/pki\"\n",
        1,
    ));
    assert!(
        std::fs::read_to_string(project.path("cluster.toml"))
            .unwrap()
            .contains("secrets/pki"),
        "the inventory has a [pki] table to extend"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" build -q -c cluster.toml -o out/dist")
        .arg(env!("CARGO_BIN_EXE_kube-bundle"))
        .current_dir(project.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (rel, want) in [
        ("out", 0o755),
        ("out/dist", 0o755),
        ("secrets", 0o755),
        ("secrets/pki", 0o700),
    ] {
        assert_eq!(mode_of(&project.path(rel)), want, "{rel}");
    }
    for entry in std::fs::read_dir(project.path("out/dist")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode_of(&path) & 0o022, 0, "{path:?} is writable by others");
    }
}
