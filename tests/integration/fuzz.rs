//! Seeded fuzzing: mutated and random archives into verify's reader, mutated inventories
//! into the parser and the build, and builds racing each other. The seed and the number
//! of cases are fixed, so every run tries the same cases whatever the machine's speed, and
//! a failure repeats; each test takes a few seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::archive::*;
use crate::common::*;
use crate::hardening::{capped, fast_inventory};

const SEED: u64 = 0x6b75_6265_2d62_756e;
/// Archives tried (a few seconds on two cores).
const ARCHIVE_CASES: usize = 800;
/// Inventories tried.
const INVENTORY_CASES: usize = 300;
/// Zeros in one gzip member that archive bombs repeat.
const ZERO_MEMBER: usize = 16 << 20;

/// What unpacking an archive yields: each regular file (name without `./`, the mode
/// bits that matter, sha256) and every other entry but folders. Modes matter for the
/// files installed on the node (install.sh and rootfs/, all in manifest.json); of the
/// others, only bits beyond rwx for all.
type Unpacked = (BTreeMap<String, (u32, String)>, Vec<String>);

/// [`Unpacked`], or `None` when tar cannot read the archive.
fn unpacked(bytes: &[u8]) -> Option<Unpacked> {
    use sha2::Digest;
    use std::io::Read;
    let gz = flate2::read::MultiGzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut other = Vec::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name: Vec<&str> = name
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let installed = matches!(name.get(1), Some(&"rootfs" | &"install.sh"));
        let name = name.join("/");
        match entry.header().entry_type() {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular => {
                let mode = entry.header().mode().ok()?;
                let mode = if installed { mode } else { mode & !0o777 };
                let mut data = Vec::new();
                entry.read_to_end(&mut data).ok()?;
                files.insert(name, (mode, hex::encode(sha2::Sha256::digest(&data))));
            }
            _ => other.push(name),
        }
    }
    Some((files, other))
}

/// One hostile variation of a bundle's members.
fn mutate_members(rng: &mut StdRng, members: &[Member]) -> Vec<u8> {
    let mut m = members.to_vec();
    let top = top_of(&m);
    for _ in 0..rng.random_range(1..4) {
        let i = rng.random_range(0..m.len());
        match rng.random_range(0..9) {
            0 => m[i].name = [b"./".as_slice(), &m[i].name].concat(),
            1 => {
                let again = m[i].clone();
                m.push(again);
            }
            2 => {
                m.remove(i);
                if m.is_empty() {
                    break;
                }
            }
            3 => {
                let kinds = b"01234567gxLKSVD\x00Z";
                m[i].kind = kinds[rng.random_range(0..kinds.len())];
                m[i].link = b"/etc/shadow".to_vec();
            }
            4 => {
                let names = [
                    format!("{top}/../../etc/cron.d/x"),
                    "/etc/passwd".to_string(),
                    format!("{top}/rootfs/x\n\u{1b}[2Kok"),
                    format!("{top}/{}", "d/".repeat(rng.random_range(50..2500))),
                    "other/file".to_string(),
                    "..".to_string(),
                    format!("./{top}//rootfs/./etc/kubernetes/cert/ca.pem"),
                ];
                m[i].name = names[rng.random_range(0..names.len())].as_bytes().to_vec();
            }
            5 => {
                let records = [
                    "path=../../x",
                    "size=99999999999",
                    "SCHILY.xattr.security.capability=x",
                    "mtime=1",
                    "linkpath=/etc",
                    "broken",
                ];
                let record = records[rng.random_range(0..records.len())];
                let line = format!("{} {record}\n", record.len() + 4);
                let mut pax = Member::file(&format!("{top}/PaxHeader"), 0o644, line.as_bytes());
                pax.kind = if rng.random_bool(0.8) { b'x' } else { b'g' };
                m.insert(i, pax);
            }
            6 => {
                let len = rng.random_range(0..m[i].data.len() + 1);
                m[i].data.truncate(len);
            }
            7 => m[i].mode = rng.random_range(0..0o200000),
            _ => {
                // A long-name entry that claims far more than it holds.
                let mut block = header_block(
                    b"././@LongLink",
                    b'L',
                    0o644,
                    rng.random_range(0..1 << 40),
                    b"",
                );
                block.extend([b'a'; 512]);
                let mut bytes = tar_bytes(&m[..i]);
                bytes.truncate(bytes.len() - 1024);
                bytes.extend(block);
                bytes.extend(tar_bytes(&m[i..]));
                return gzip(&bytes);
            }
        }
    }
    gzip(&tar_bytes(&m))
}

/// verify on a bundle mutated at every level, and on noise: it never panics, refuses
/// with exit 2 what it cannot read, and passes nothing whose unpacked content differs
/// from the bundle it was made from.
#[test]
fn mutated_and_random_archives_get_a_finding_or_exit_2() {
    let project = Project::new(&fast_inventory());
    project.build_ok();
    let tarball = built_bundles(&project.path("dist")).remove(0);
    let original = std::fs::read(&tarball).unwrap();
    let members = read_members(&tarball);
    let tar_stream = tar_bytes(&members);
    let expected = unpacked(&original).unwrap();
    let case = project.path(tarball.file_name().unwrap().to_str().unwrap());
    let case = case.with_file_name(format!(
        "case-{}",
        case.file_name().unwrap().to_string_lossy()
    ));

    let case_arg = case.file_name().unwrap().to_str().unwrap();
    let zero_member = gzip(&vec![0u8; ZERO_MEMBER]);
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut cases, mut refused, mut found, mut clean) = (0, 0, 0, 0);
    let mut capped_runs = 0;
    while cases < ARCHIVE_CASES {
        let mut bomb = false;
        let bytes = match rng.random_range(0..11) {
            0..=3 => {
                let mut t = tar_stream.clone();
                for _ in 0..rng.random_range(1..5) {
                    let at = rng.random_range(0..t.len());
                    t[at] = rng.random();
                }
                gzip(&t)
            }
            4 => {
                let mut g = original.clone();
                let at = rng.random_range(0..g.len());
                g[at] = rng.random();
                if rng.random_bool(0.5) {
                    g.truncate(rng.random_range(0..g.len()));
                }
                g
            }
            5 => {
                let len = rng.random_range(0..4096);
                let noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if rng.random_bool(0.5) {
                    gzip(&noise)
                } else {
                    noise
                }
            }
            10 => {
                // A long name or PAX header claiming up to 2 GiB, with that many zeros
                // behind it: read whole, it would take gigabytes.
                bomb = true;
                let kinds = b"LxgK";
                let kind = kinds[rng.random_range(0..kinds.len())];
                let claimed: u64 = 1 << rng.random_range(20..32);
                let mut b = gzip(&header_block(b"x/bomb", kind, 0o644, claimed, b""));
                for _ in 0..claimed.div_ceil(ZERO_MEMBER as u64) {
                    b.extend(&zero_member);
                }
                b.extend(gzip(&tar_bytes(&members)));
                b
            }
            _ => mutate_members(&mut rng, &members),
        };
        std::fs::write(&case, &bytes).unwrap();
        cases += 1;
        let result = kube_bundle::verify::verify(&kube_bundle::verify::VerifyOptions {
            bundles: vec![case.clone()],
            warn_within: Duration::from_secs(1),
            trust: None,
            seal_key: None,
        });
        let status = match &result {
            Err(_) => 2,
            Ok(report) if !report.findings.is_empty() => 1,
            Ok(_) => 0,
        };
        // Bombs and a sample of the rest again through the binary, with its address
        // space capped at 1 GiB: the same verdict, and no abort for want of memory.
        if bomb || cases % 10 == 0 {
            let out = capped(&project, &["verify", "--warn-within", "1s", case_arg]);
            assert_eq!(
                out.status.code(),
                Some(status),
                "case {cases}: {}",
                stderr(&out)
            );
            capped_runs += 1;
        }
        match result {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "case {cases}: {e}");
                refused += 1;
            }
            Ok(report) if !report.findings.is_empty() => {
                for f in &report.findings {
                    let line = format!("{}: {}: {}", f.bundle, f.file, f.message);
                    assert!(
                        !line.chars().any(char::is_control),
                        "case {cases}: {line:?}"
                    );
                }
                found += 1;
            }
            Ok(_) => {
                assert_eq!(
                    unpacked(&bytes).as_ref(),
                    Some(&expected),
                    "case {cases}: verify passed an archive that unpacks differently"
                );
                clean += 1;
            }
        }
    }
    assert!(
        refused > 0 && found > 0,
        "{refused} refused, {found} with findings"
    );
    assert!(capped_runs >= 10, "only {capped_runs} runs of the binary");
    eprintln!(
        "{cases} archives: {refused} refused, {found} with findings, {clean} unchanged; \
         {capped_runs} also through the binary"
    );
}

const VALUES: [&str; 24] = [
    "\"\"",
    "\"0\"",
    "-1",
    "0",
    "70000",
    "\"m1\"",
    "\"M1\"",
    "\"127.0.1.1\"",
    "\"::1\"",
    "\"../x\"",
    "\"a\\nb\"",
    "\"{{node.ip}}\"",
    "\"https://{{node.ip}}:6443/{{node.name}}\"",
    "true",
    "[]",
    "{}",
    "\"1.40.0\"",
    "\"1.15.0\"",
    "\"v1.20.2\"",
    "\"ecdsa-p256\"",
    "\"ca\"",
    "\"365d\"",
    "\"ü\"",
    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
];

fn mutate_inventory(rng: &mut StdRng, base: &str) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..4) {
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..6) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let (again, at) = (lines[i].clone(), rng.random_range(0..lines.len()));
                lines.insert(at, again);
            }
            2 | 3 => {
                if let Some((key, _)) = lines[i].split_once(" = ") {
                    lines[i] = format!("{key} = {}", VALUES[rng.random_range(0..VALUES.len())]);
                }
            }
            4 => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random_range(0x20..0x7f);
                }
                lines[i] = String::from_utf8(bytes).unwrap();
            }
            _ => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Mutated inventories: the parser never panics and refuses with exit 2; a sample of
/// those it accepts is built, and each build either refuses with exit 2 or gives
/// bundles that verify.
#[test]
fn mutated_inventories_are_refused_or_build_bundles_that_verify() {
    let base = format!(
        "{}\n[kube-controller-manager]\nsecure-port = 10257\n\n[kube-controller-manager.extra-args]\nv = 2\n",
        fast_inventory()
    );
    let project = Project::new(&base);
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut cases, mut accepted, mut refused, mut built) = (0, 0, 0, 0);
    while cases < INVENTORY_CASES {
        let text = mutate_inventory(&mut rng, &base);
        project.write("cluster.toml", &text);
        cases += 1;
        match kube_bundle::load::config::load(&project.path("cluster.toml")) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{text}\n{e}");
                refused += 1;
                continue;
            }
            // Builds are slower: one in three accepted inventories is built.
            Ok(_) => {
                accepted += 1;
                if accepted % 3 != 0 {
                    continue;
                }
            }
        }
        let _ = std::fs::remove_dir_all(project.path("pki"));
        let _ = std::fs::remove_dir_all(project.path("dist"));
        let out = project.build();
        match out.status.code() {
            Some(2) => refused += 1,
            Some(0) => {
                let bundles = built_bundles(&project.path("dist"));
                let verified = verify_all(&project, &["--warn-within", "1s"], &bundles);
                assert_eq!(
                    verified.status.code(),
                    Some(0),
                    "{text}\n{}{}",
                    stdout(&verified),
                    stderr(&verified)
                );
                built += 1;
            }
            other => panic!("build exited {other:?}:\n{text}\n{}", stderr(&out)),
        }
    }
    assert!(refused > 0 && built > 0, "{refused} refused, {built} built");
    eprintln!("{cases} inventories: {refused} refused, {built} built and verified");
}

/// `kube-bundle verify` with `options` on `bundles`.
fn verify_all(project: &Project, options: &[&str], bundles: &[PathBuf]) -> Output {
    let mut args: Vec<&str> = vec!["verify"];
    args.extend(options);
    args.extend(bundles.iter().map(|p| p.to_str().unwrap()));
    project.kube_bundle(&args)
}

/// Reads one bundle member by its path below the top folder.
fn member_data(tarball: &Path, rel: &str) -> Vec<u8> {
    read_members(tarball)
        .into_iter()
        .find(|m| m.name().split_once('/').map(|(_, r)| r) == Some(rel))
        .unwrap_or_else(|| panic!("{} has no {rel}", tarball.display()))
        .data
}

/// Two builds at once, twenty times, half of them on a fresh pki/: both succeed, and
/// pki/ and dist/ agree (dist's CA is pki's, every bundle carries it and verifies, every
/// leaf in pki/ chains to it).
#[test]
fn concurrent_builds_leave_pki_and_dist_in_agreement() {
    let project = Project::new(&fast_inventory());
    for round in 0..20 {
        if round % 2 == 0 {
            let _ = std::fs::remove_dir_all(project.path("pki"));
            let _ = std::fs::remove_dir_all(project.path("dist"));
        }
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_kube-bundle"))
                .args(["build", "-q", "-c", "cluster.toml", "-o", "dist"])
                .current_dir(project.dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        let ca = std::fs::read(project.path("pki/ca.pem")).unwrap();
        assert_eq!(
            std::fs::read(project.path("dist/ca.pem")).unwrap(),
            ca,
            "round {round}: dist/ca.pem is not pki/ca.pem"
        );
        let bundles = built_bundles(&project.path("dist"));
        for bundle in &bundles {
            assert_eq!(
                member_data(bundle, "rootfs/etc/kubernetes/cert/ca.pem"),
                ca,
                "round {round}: {}",
                bundle.display()
            );
        }
        let out = verify_all(&project, &[], &bundles);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            stdout(&out)
        );
        let leaves = leaf_certificates(&project.path("pki"));
        assert_eq!(leaves.len(), NODES.len(), "round {round}: {leaves:?}");
        for leaf in leaves {
            let out = run_ok(
                openssl_command(&["verify", "-CAfile"])
                    .arg(project.path("pki/ca.pem"))
                    .arg(&leaf),
            );
            assert!(out.ends_with(": OK\n"), "round {round}: {out}");
        }
    }
}
