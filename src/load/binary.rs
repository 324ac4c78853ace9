//! What a binary the inventory carries is, read without running it: an ELF executable
//! for Linux on the nodes' architecture, and the release stamped into it, which must be
//! the one the inventory states. The build calls [`check`] before it writes anything.
//! This module only reads: the ELF and section headers, Go's build information and, where
//! that does not name the release, the string variables of `.data`; never the whole file.
//!
//! Where a Go binary keeps its release is its row's `version_stamp`: a variable set with
//! `-X` in its linker flags, which Go records in `.go.buildinfo` since 1.18 (unless built
//! with `-trimpath`), and which sits in `.data` as a string beside others of its series.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::component::Component;
use crate::error::{Error, Result};
use crate::model::{Arch, ComponentSettings, Inventory};
use crate::version::KubeVersion;

/// Checks every binary the inventory carries: `binary` of each component and the tools
/// carried beside it, unless its section says `binary-check = false`.
pub fn check(inv: &Inventory) -> Result<()> {
    let mut carried: Vec<(&ComponentSettings, &str, &Path)> = inv
        .components
        .iter()
        .filter_map(|s| Some((s, "binary", s.binary.as_deref()?)))
        .collect();
    for s in &inv.components {
        for (name, path) in &s.tools {
            carried.push((s, name, path));
        }
    }
    for (settings, key, path) in carried {
        check_one(inv, settings, key, path)?;
    }
    Ok(())
}

/// The release the inventory states for a component's binaries.
enum Wanted {
    /// `cluster.kubernetes-version`: its minor, and its patch when given.
    Kubernetes(KubeVersion),
    /// The component's own release (`<section>.version`): a minor of its row's series.
    Own(&'static Component, u32),
}

impl Wanted {
    fn of(inv: &Inventory, settings: &ComponentSettings) -> Wanted {
        match settings.release {
            Some(minor) => Wanted::Own(settings.component, minor),
            None => Wanted::Kubernetes(inv.cluster.version),
        }
    }

    fn key(&self) -> String {
        match self {
            Wanted::Kubernetes(_) => "cluster.kubernetes-version".into(),
            Wanted::Own(c, _) => format!("{}.version", c.name),
        }
    }

    fn shown(&self) -> String {
        match self {
            Wanted::Kubernetes(v) => v.to_string(),
            Wanted::Own(c, minor) => format!("{}{minor}", c.version_series),
        }
    }

    fn matches(&self, r: Release) -> bool {
        match self {
            Wanted::Kubernetes(v) => {
                r.major == 1 && r.minor == v.minor && v.patch.is_none_or(|p| p == r.patch)
            }
            Wanted::Own(c, minor) => {
                c.version_series.trim_end_matches('.').parse() == Ok(r.major) && r.minor == *minor
            }
        }
    }
}

fn check_one(inv: &Inventory, settings: &ComponentSettings, key: &str, path: &Path) -> Result<()> {
    let c = settings.component;
    let section = c.name;
    let field = format!("{}: `{section}.{key}`", inv.path.display());
    let what = if key == "binary" { section } else { key };
    let arch = inv.cluster.arch;
    let reading = |e: std::io::Error| Error::from(e).doing("reading", path);
    let override_hint = format!(
        "or, if you know better, set `binary-check = false` under [{section}] to carry it as is"
    );
    let elf = match read_elf(path).map_err(reading)? {
        Ok(elf) => elf,
        Err(not) if settings.check_binary => {
            return Err(Error::input(
                field,
                format!("`{}` is {not}, not an ELF executable", path.display()),
            )
            .with_hint(format!(
                "point it at the Linux {} build of {what}, {override_hint}",
                arch.name()
            )))
        }
        // A wrapper script, say: carried as is.
        Err(_) => return Ok(()),
    };
    let info = elf.build_info().map_err(reading)?;
    let machine = elf.machine();
    let problem = elf
        .kind_problem()
        .or_else(|| system_problem(&elf, info.as_ref()))
        .or_else(|| {
            (machine != machine_of(arch)).then(|| {
                let nodes = match inv.cluster.arch_set {
                    true => format!("`cluster.arch` is {}", arch.name()),
                    false => format!(
                        "the nodes are {}: the inventory sets no `cluster.arch`, and amd64 is the default",
                        arch.name()
                    ),
                };
                format!("an ELF executable for {}, but {nodes}", machine.name())
            })
        });
    if let Some(problem) = problem {
        return Err(Error::input(field, format!("`{}` is {problem}", path.display()))
            .with_hint(match inv.cluster.arch_set {
                true => format!(
                    "carry the Linux {} build of {what}, or correct `cluster.arch`",
                    arch.name()
                ),
                false => format!(
                    "carry the Linux {} build of {what}, or set `arch` under [cluster] to the nodes' architecture ({})",
                    arch.name(),
                    Arch::NAMES.join(", ")
                ),
            }));
    }
    if !settings.check_binary {
        return Ok(());
    }
    // A release alone does not tell two programs of one release apart (and one program
    // may link another's version package): Go names the program.
    if let Some(program) = info.as_ref().and_then(|i| i.setting_line("path")) {
        let packages = if key == "binary" {
            c.main_packages
        } else {
            &[]
        };
        if !is_program(program, what, packages) {
            return Err(Error::input(
                field,
                format!(
                    "`{}` is the Go program `{program}`, not {what}",
                    path.display()
                ),
            )
            .with_hint(format!("point it at the {what} binary, {override_hint}")));
        }
    }
    let wanted = Wanted::of(inv, settings);
    let stamp = elf
        .go_stamp(info.as_ref(), c.version_series, c.version_stamp)
        .map_err(reading)?;
    let Some(stamp) = stamp else {
        return Err(Error::input(
            field,
            format!(
                "the release of `{}` cannot be read without running it: it carries no {} version stamp kube-bundle knows",
                path.display(),
                family(c)
            ),
        )
        .with_hint(format!(
            "carry an official build of {what} {}, {override_hint}",
            wanted.shown()
        )));
    };
    if !Release::parse(&stamp).is_some_and(|r| wanted.matches(r)) {
        return Err(Error::input(
            field,
            format!(
                "`{}` is {what} {stamp}, but `{}` is {}",
                path.display(),
                wanted.key(),
                wanted.shown()
            ),
        )
        .with_hint(format!(
            "carry {what} {}, or correct `{}` (it picks the flags), {override_hint}",
            wanted.shown(),
            wanted.key()
        )));
    }
    Ok(())
}

/// Whether a Go main package path is the program `what`: one of `packages` (a row's
/// `main_packages`) when it names some, else a path ending in `/what` (`…/cmd/what`);
/// a last `/vN` element is left out.
fn is_program(package: &str, what: &str, packages: &[&str]) -> bool {
    let unversioned = match package.rsplit_once('/') {
        Some((rest, last))
            if last.len() > 1
                && last.starts_with('v')
                && last[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => package,
    };
    if packages.is_empty() {
        unversioned.rsplit('/').next() == Some(what)
    } else {
        packages.contains(&unversioned)
    }
}

/// Why the file is not for Linux: its OS/ABI byte, or the GOOS Go recorded.
fn system_problem(elf: &Elf, info: Option<&BuildInfo>) -> Option<String> {
    let abi = match elf.os_abi {
        0 | 3 => None,
        2 => Some("NetBSD"),
        6 => Some("Solaris"),
        9 => Some("FreeBSD"),
        12 => Some("OpenBSD"),
        _ => Some("another system"),
    };
    if let Some(system) = abi {
        return Some(format!("an executable for {system}, not Linux"));
    }
    match info.and_then(|i| i.setting("GOOS")) {
        None | Some("linux") => None,
        Some(other) => Some(format!("a Go executable for {other}, not Linux")),
    }
}

/// Whose releases `c`'s binaries are: Kubernetes', or the component's own.
fn family(c: &Component) -> &'static str {
    if c.version_series == "1." {
        "Kubernetes"
    } else {
        c.name
    }
}

/// A release as stamped: `v1.20.2`, `v1.20.2-dirty`, `3.4.23`; pre-release and build
/// suffixes are not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Release {
    pub fn parse(stamp: &str) -> Option<Release> {
        let bare = stamp.strip_prefix('v').unwrap_or(stamp);
        let mut parts = bare.splitn(3, '.');
        let number = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let rest = parts.next()?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end < rest.len() && !rest[end..].starts_with(['-', '+']) {
            return None;
        }
        let patch = number(&rest[..end])?;
        Some(Release {
            major,
            minor,
            patch,
        })
    }
}

// ---- ELF -----------------------------------------------------------------------------

/// An ELF machine with its word size and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub code: u16,
    pub wide: bool,
    pub big_endian: bool,
}

impl Machine {
    pub fn name(self) -> String {
        let base = match self.code {
            3 => "x86 (32-bit)",
            8 => "MIPS",
            20 => "PowerPC",
            21 => "PowerPC64",
            22 => "S/390",
            40 => "ARM (32-bit)",
            62 => "x86-64",
            183 => "AArch64",
            243 => "RISC-V",
            258 => "LoongArch",
            _ => return format!("machine {}", self.code),
        };
        let order = match (self.code, self.big_endian) {
            (21 | 8, false) => " little-endian",
            (21 | 8, true) => " big-endian",
            (22, _) if !self.wide => " (31-bit)",
            (62 | 183, _) if !self.wide => " (32-bit)",
            (62 | 183 | 40 | 3 | 243 | 258, true) => " big-endian",
            _ => "",
        };
        format!("{base}{order}")
    }
}

/// The ELF machine of a node architecture.
pub fn machine_of(arch: Arch) -> Machine {
    let (code, wide, big_endian) = match arch {
        Arch::Amd64 => (62, true, false),
        Arch::Arm64 => (183, true, false),
        Arch::Arm => (40, false, false),
        Arch::Ppc64le => (21, true, false),
        Arch::S390x => (22, true, true),
    };
    Machine {
        code,
        wide,
        big_endian,
    }
}

/// What of an ELF file this module reads: its header and section headers.
pub struct Elf {
    file: std::fs::File,
    wide: bool,
    big_endian: bool,
    kind: u16,
    code: u16,
    os_abi: u8,
    entry: u64,
    sections: Vec<Section>,
}

#[derive(Debug, Clone)]
struct Section {
    name: String,
    kind: u32,
    addr: u64,
    offset: u64,
    size: u64,
}

/// `SHT_NOBITS`: a section with no bytes in the file (`.bss`).
const NOBITS: u32 = 8;

/// At most this much of `.go.buildinfo` is read; Go's own reader takes 64 KiB of it for
/// the header and then the strings it points at.
const BUILDINFO_LIMIT: u64 = 1 << 20;

/// `.data` is read in blocks of this size, never whole.
const DATA_BLOCK: usize = 1 << 20;

/// Opens `path` and reads its ELF header and section headers; the inner error says what
/// the file is instead (`a shell script`, `empty`) when it is not ELF.
pub fn read_elf(path: &Path) -> std::io::Result<Result<Elf, String>> {
    let file = fs_err::File::open(path)?.into_parts().0;
    let mut ident = [0u8; 64];
    let got = read_up_to(&file, 0, &mut ident)?;
    let ident = &ident[..got];
    if !ident.starts_with(b"\x7fELF") {
        return Ok(Err(match ident {
            [] => "empty".to_string(),
            [b'#', b'!', ..] => "a script (it starts with `#!`)".to_string(),
            _ if ident
                .iter()
                .all(|b| b.is_ascii() && (!b.is_ascii_control() || b.is_ascii_whitespace())) =>
            {
                "a text file".to_string()
            }
            _ => "not an ELF file".to_string(),
        }));
    }
    let (wide, big_endian) = match (ident.get(4), ident.get(5)) {
        (Some(1), Some(1)) => (false, false),
        (Some(1), Some(2)) => (false, true),
        (Some(2), Some(1)) => (true, false),
        (Some(2), Some(2)) => (true, true),
        _ => {
            return Ok(Err(
                "a damaged ELF file (unknown class or byte order)".into()
            ))
        }
    };
    let need = if wide { 64 } else { 52 };
    if ident.len() < need {
        return Ok(Err("a truncated ELF file".into()));
    }
    let r = Fields { big_endian };
    let (entry, shoff, rest) = if wide {
        (r.u64(&ident[24..]), r.u64(&ident[40..]), &ident[58..])
    } else {
        (
            u64::from(r.u32(&ident[24..])),
            u64::from(r.u32(&ident[32..])),
            &ident[46..],
        )
    };
    let (shentsize, shnum, shstrndx) = (r.u16(rest), r.u16(&rest[2..]), r.u16(&rest[4..]));
    let mut elf = Elf {
        file,
        wide,
        big_endian,
        kind: r.u16(&ident[16..]),
        code: r.u16(&ident[18..]),
        os_abi: ident[7],
        entry,
        sections: Vec::new(),
    };
    let min_entry = if wide { 64 } else { 40 };
    // A damaged header must not make this read much: Go binaries have a few dozen.
    let table_size = usize::from(shnum) * usize::from(shentsize);
    if shoff != 0 && shnum > 0 && usize::from(shentsize) >= min_entry && table_size <= 1 << 20 {
        let mut table = vec![0u8; table_size];
        if read_up_to(&elf.file, shoff, &mut table)? == table.len() {
            elf.sections = elf.parse_sections(&table, usize::from(shentsize), shstrndx)?;
        }
    }
    Ok(Ok(elf))
}

impl Elf {
    pub fn machine(&self) -> Machine {
        Machine {
            code: self.code,
            wide: self.wide,
            big_endian: self.big_endian,
        }
    }

    fn fields(&self) -> Fields {
        Fields {
            big_endian: self.big_endian,
        }
    }

    fn parse_sections(
        &self,
        table: &[u8],
        size: usize,
        names_at: u16,
    ) -> std::io::Result<Vec<Section>> {
        let r = self.fields();
        let mut sections: Vec<(u32, Section)> = table
            .chunks_exact(size)
            .map(|h| {
                let name = r.u32(h);
                let kind = r.u32(&h[4..]);
                let (addr, offset, size) = if self.wide {
                    (r.u64(&h[16..]), r.u64(&h[24..]), r.u64(&h[32..]))
                } else {
                    (
                        u64::from(r.u32(&h[12..])),
                        u64::from(r.u32(&h[16..])),
                        u64::from(r.u32(&h[20..])),
                    )
                };
                (
                    name,
                    Section {
                        name: String::new(),
                        kind,
                        addr,
                        offset,
                        size,
                    },
                )
            })
            .collect();
        let Some((_, names)) = sections.get(usize::from(names_at)) else {
            return Ok(Vec::new());
        };
        // Section names are short; a damaged table must not make this read much.
        let mut strings = vec![0u8; names.size.min(1 << 16) as usize];
        let got = read_up_to(&self.file, names.offset, &mut strings)?;
        strings.truncate(got);
        for (at, section) in &mut sections {
            let start = (*at as usize).min(strings.len());
            let end = strings[start..]
                .iter()
                .position(|&b| b == 0)
                .map_or(strings.len(), |n| start + n);
            section.name = String::from_utf8_lossy(&strings[start..end]).into_owned();
        }
        Ok(sections.into_iter().map(|(_, s)| s).collect())
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.name == name && s.kind != NOBITS)
    }

    /// Why the file is not an executable: an object file, a shared library, a core dump.
    fn kind_problem(&self) -> Option<String> {
        match self.kind {
            2 => None,
            // A position-independent executable has an entry point; a library has none.
            3 if self.entry != 0 => None,
            3 => Some("a shared library, not an executable".into()),
            1 => Some("an object file, not an executable".into()),
            4 => Some("a core dump, not an executable".into()),
            other => Some(format!("an ELF file of type {other}, not an executable")),
        }
    }

    /// The Go build information, when the binary has it in the Go 1.18 form (strings
    /// inline); older forms point into the data segment and are left to `.data`.
    pub fn build_info(&self) -> std::io::Result<Option<BuildInfo>> {
        let Some(section) = self.section(".go.buildinfo") else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; section.size.min(BUILDINFO_LIMIT) as usize];
        let got = read_up_to(&self.file, section.offset, &mut bytes)?;
        bytes.truncate(got);
        Ok(BuildInfo::parse(&bytes))
    }

    /// The release stamped into a Go binary of the `series` (a row's `version_series`) in
    /// the variable `stamp` (its `version_stamp`): from the linker flags Go recorded, else
    /// from the variables in `.data`.
    pub fn go_stamp(
        &self,
        info: Option<&BuildInfo>,
        series: &str,
        stamp: (&str, &str),
    ) -> std::io::Result<Option<String>> {
        if let Some(info) = info {
            if let Some(value) = info.linker_variable(|name| stamp_variable(stamp, name)) {
                return Ok(Some(value));
            }
        }
        self.data_stamp(series)
    }

    /// Reads `.data` as Go string headers (pointer, length) and returns the one release
    /// its version variable holds; none when there is none, or several that differ.
    fn data_stamp(&self, series: &str) -> std::io::Result<Option<String>> {
        let Some(data) = self.section(".data") else {
            return Ok(None);
        };
        let word = if self.wide { 8 } else { 4 };
        let header = 2 * word;
        // The headers before a candidate that are read with it: Kubernetes' gitMajor,
        // gitMinor and gitTreeState come right before gitVersion.
        let back = 3 * header;
        let mut found: Vec<String> = Vec::new();
        let mut block = vec![0u8; (data.size as usize).min(DATA_BLOCK) + back];
        // The first slot not yet looked at, from the start of `.data`.
        let mut next = 0u64;
        while next < data.size {
            // Each block starts `back` bytes early, so every slot sees its predecessors.
            let from = next.saturating_sub(back as u64);
            let len = ((data.size - from) as usize).min(block.len());
            let at = data.offset.saturating_add(from);
            let got = read_up_to(&self.file, at, &mut block[..len])?;
            let bytes = &block[..got];
            let mut slot = (next - from) as usize;
            while slot + header <= bytes.len() {
                if let Some(stamp) = self.stamp_at(bytes, slot, header, series)? {
                    if !found.contains(&stamp) {
                        found.push(stamp);
                    }
                }
                slot += word;
            }
            if got < len || from + slot as u64 <= next {
                break;
            }
            next = from + slot as u64;
        }
        Ok(match found.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        })
    }

    /// The release at one slot of `.data`, when the string header there holds one of
    /// `series` with the neighbours its variable has.
    fn stamp_at(
        &self,
        bytes: &[u8],
        slot: usize,
        header: usize,
        series: &str,
    ) -> std::io::Result<Option<String>> {
        let (_, len) = self.string_header(&bytes[slot..]);
        let plausible = match series {
            "3." => (5..=32).contains(&len),
            _ => (6..=64).contains(&len),
        };
        if !plausible {
            return Ok(None);
        }
        let Some(value) = self.string_at(&bytes[slot..], 64)? else {
            return Ok(None);
        };
        let Some(release) = Release::parse(&value) else {
            return Ok(None);
        };
        match series {
            // MinClusterVersion says 3.0.0 in every release; Version is the other one.
            "3." if release.major == 3 && value != "3.0.0" => Ok(Some(value)),
            "3." => Ok(None),
            _ if release.major != 1 || !value.starts_with('v') => Ok(None),
            _ => {
                // gitMinor (`20` or `20+`) is one to three headers before gitVersion.
                let minor = release.minor.to_string();
                for back in 1..=3 {
                    let Some(at) = slot.checked_sub(back * header) else {
                        break;
                    };
                    if let Some(text) = self.string_at(&bytes[at..], 8)? {
                        if text.trim_end_matches('+') == minor {
                            return Ok(Some(value));
                        }
                    }
                }
                Ok(None)
            }
        }
    }

    fn string_header(&self, bytes: &[u8]) -> (u64, u64) {
        let r = self.fields();
        if self.wide {
            (r.u64(bytes), r.u64(&bytes[8..]))
        } else {
            (u64::from(r.u32(bytes)), u64::from(r.u32(&bytes[4..])))
        }
    }

    /// The string a Go string header points at, when it is printable text of at most
    /// `max` bytes in a section of the file.
    fn string_at(&self, header: &[u8], max: u64) -> std::io::Result<Option<String>> {
        let (ptr, len) = self.string_header(header);
        if len == 0 || len > max {
            return Ok(None);
        }
        let Some(section) = self.sections.iter().find(|s| {
            s.kind != NOBITS
                && s.addr != 0
                && ptr >= s.addr
                && ptr
                    .checked_add(len)
                    .is_some_and(|end| end <= s.addr.saturating_add(s.size))
        }) else {
            return Ok(None);
        };
        let mut text = vec![0u8; len as usize];
        let at = section.offset.saturating_add(ptr - section.addr);
        if read_up_to(&self.file, at, &mut text)? < text.len() {
            return Ok(None);
        }
        Ok(String::from_utf8(text)
            .ok()
            .filter(|t| t.bytes().all(|b| b.is_ascii_graphic())))
    }
}

/// Whether `name` (an `-X` variable, possibly under a vendor path) is a row's
/// `version_stamp`.
fn stamp_variable((part, end): (&str, &str), name: &str) -> bool {
    name.contains(part) && name.ends_with(end)
}

struct Fields {
    big_endian: bool,
}

impl Fields {
    fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    fn u64(&self, b: &[u8]) -> u64 {
        let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        if self.big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }
}

/// Reads at `offset` until `buf` is full or the file ends; returns the bytes read.
fn read_up_to(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        // Past what a file offset can be (a damaged header): nothing is there.
        let Some(at) = offset
            .checked_add(done as u64)
            .filter(|&at| at <= i64::MAX as u64)
        else {
            break;
        };
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

// ---- Go build information --------------------------------------------------------------

/// The module and build lines Go 1.18 and later write into `.go.buildinfo`, as
/// `go version -m` prints them.
pub struct BuildInfo {
    pub lines: String,
}

const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";

impl BuildInfo {
    /// Parses the section: a 32-byte header (magic, pointer size, flags), then with flag
    /// 2 (Go 1.18) the Go version and the module text, each a varint length and bytes.
    pub fn parse(section: &[u8]) -> Option<BuildInfo> {
        if !section.starts_with(BUILDINFO_MAGIC) || section.len() < 32 {
            return None;
        }
        if section[15] & 2 == 0 {
            return None;
        }
        let mut rest = &section[32..];
        let mut string = || -> Option<&[u8]> {
            let (len, used) = uvarint(rest)?;
            let end = used.checked_add(usize::try_from(len).ok()?)?;
            let text = rest.get(used..end)?;
            rest = &rest[end..];
            Some(text)
        };
        let _go_version = string()?;
        let module = string()?;
        // The module text sits between two 16-byte sentinels.
        let lines = match module.len() >= 33 && module[module.len() - 17] == b'\n' {
            true => String::from_utf8_lossy(&module[16..module.len() - 16]).into_owned(),
            false => String::new(),
        };
        Some(BuildInfo { lines })
    }

    /// The value of a line such as `path\tk8s.io/kubernetes/cmd/<program>`.
    pub fn setting_line(&self, kind: &str) -> Option<&str> {
        self.lines
            .lines()
            .find_map(|line| line.strip_prefix(kind)?.strip_prefix('\t'))
    }

    /// A `build KEY=VALUE` setting, unquoted.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.lines.lines().find_map(|line| {
            let (k, v) = line.strip_prefix("build\t")?.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// The value an `-X name=value` of the recorded `-ldflags` gives the first variable
    /// `wanted` accepts.
    pub fn linker_variable(&self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let raw = self.lines.lines().find_map(|line| {
            let (k, v) = line.strip_prefix("build\t")?.split_once('=')?;
            (k == "-ldflags").then_some(v)
        })?;
        let flags = match raw.starts_with('"') {
            true => go_unquote(raw)?,
            false => raw.to_string(),
        };
        let args = split_quoted(&flags)?;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let assignment = match arg.as_str() {
                "-X" | "--X" => args.next().map(String::as_str),
                other => other
                    .strip_prefix("-X=")
                    .or_else(|| other.strip_prefix("--X=")),
            };
            if let Some((name, value)) = assignment.and_then(|a| a.split_once('=')) {
                if wanted(name) {
                    return Some(value.to_string());
                }
            }
        }
        None
    }
}

fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Undoes Go's `strconv.Quote`, which `go version -m` uses for a setting with spaces or
/// quotes; `None` for an escape it does not write.
fn go_unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<char> {
            let digits: String = chars.take(n).collect();
            (digits.len() == n)
                .then(|| u32::from_str_radix(&digits, 16).ok())
                .flatten()
                .and_then(char::from_u32)
        };
        out.push(match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '\'' => '\'',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'v' => '\x0b',
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            _ => return None,
        });
    }
    Some(out)
}

/// Splits flags as the go command does (`cmd/internal/quoted`): on white space, a field
/// that starts with `'` or `"` running to the same quote.
fn split_quoted(text: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (field, after) = match rest.chars().next()? {
            q @ ('\'' | '"') => {
                let end = rest[1..].find(q)? + 1;
                (&rest[1..end], &rest[end + 1..])
            }
            _ => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        fields.push(field.to_string());
        rest = after.trim_start();
    }
    Some(fields)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use crate::component;

    /// The main packages of the row named `name`; none for a program without a row.
    fn packages(name: &str) -> &'static [&'static str] {
        component::by_name(name).map_or(&[], |c| c.main_packages)
    }

    #[test]
    fn releases_parse_with_their_suffixes() {
        let r = |major, minor, patch| Release {
            major,
            minor,
            patch,
        };
        assert_eq!(Release::parse("v1.20.2"), Some(r(1, 20, 2)));
        assert_eq!(Release::parse("v1.20.2-dirty"), Some(r(1, 20, 2)));
        assert_eq!(Release::parse("v1.23.0+k3s1"), Some(r(1, 23, 0)));
        assert_eq!(Release::parse("3.4.23"), Some(r(3, 4, 23)));
        for bad in ["", "v1.20", "1.x.2", "v0.0.0master", "$Format:%H$", "3.4.x"] {
            assert_eq!(Release::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn linker_flags_are_read_as_the_go_command_quotes_and_splits_them() {
        // As `go version -m` shows a Kubernetes build made with `make`.
        let info = BuildInfo {
            lines: "path\tk8s.io/kubernetes/cmd/kube-scheduler\n\
                    build\t-compiler=gc\n\
                    build\t-ldflags=\"-s -w -X 'k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version.gitVersion=v1.20.2' -X 'k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion=v1.20.2' -X \\\"k8s.io/component-base/version.gitMinor=20\\\"\"\n\
                    build\tGOOS=linux\n"
                .into(),
        };
        assert_eq!(info.setting("GOOS"), Some("linux"));
        assert_eq!(
            info.linker_variable(|n| stamp_variable(component::KUBE_SCHEDULER.version_stamp, n))
                .as_deref(),
            Some("v1.20.2")
        );
        assert_eq!(
            info.linker_variable(|n| n.ends_with("version.gitMinor"))
                .as_deref(),
            Some("20")
        );
        assert_eq!(
            info.linker_variable(|n| stamp_variable(component::ETCD.version_stamp, n)),
            None
        );
        assert_eq!(
            split_quoted("-X=a.b=1  -s 'x y'").unwrap(),
            ["-X=a.b=1", "-s", "x y"]
        );
        assert_eq!(split_quoted("'unclosed"), None);
        assert_eq!(
            info.setting_line("path"),
            Some("k8s.io/kubernetes/cmd/kube-scheduler")
        );
        for (package, program, is) in [
            (
                "k8s.io/kubernetes/cmd/kube-scheduler",
                "kube-scheduler",
                true,
            ),
            (
                "k8s.io/kubernetes/cmd/kube-scheduler",
                "kube-controller-manager",
                false,
            ),
            ("go.etcd.io/etcd", "etcd", true),
            ("go.etcd.io/etcd/server/v3", "etcd", true),
            ("go.etcd.io/etcd/etcdctl/v3", "etcdctl", true),
            ("go.etcd.io/etcd/etcdctl", "etcd", false),
            ("k8s.io/kubernetes/cmd/kube-apiserver", "etcd", false),
        ] {
            assert_eq!(
                is_program(package, program, packages(program)),
                is,
                "{package} {program}"
            );
        }
        assert_eq!(go_unquote(r#""a\"b\u00e9\x41""#).as_deref(), Some("a\"béA"));
    }

    /// Damaged headers are read as what they say, without reading much or panicking.
    #[test]
    fn damaged_elf_headers_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let mut header = vec![0u8; 64];
        header[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        header[16] = 2;
        header[18] = 62;
        // Section headers past the end of the file and near the end of u64's range.
        header[40..48].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
        header[58..64].copy_from_slice(&[64, 0, 0x10, 0, 0x01, 0]);
        let elf = read_elf(&write("far", &header)).unwrap().unwrap();
        assert_eq!(elf.machine(), machine_of(Arch::Amd64));
        assert!(elf.sections.is_empty());
        assert!(elf.build_info().unwrap().is_none());
        assert_eq!(
            elf.go_stamp(None, "1.", component::KUBE_SCHEDULER.version_stamp)
                .unwrap(),
            None
        );
        // 65535 section headers of 65535 bytes each: not read.
        header[58..64].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x01, 0]);
        let elf = read_elf(&write("huge", &header)).unwrap().unwrap();
        assert!(elf.sections.is_empty());
        for (bytes, what) in [
            (&header[..40], "a truncated ELF file"),
            (
                &b"\x7fELF\x03\x01"[..],
                "a damaged ELF file (unknown class or byte order)",
            ),
            (&b""[..], "empty"),
            (&b"\x00\x01binary"[..], "not an ELF file"),
        ] {
            let not = read_elf(&write("bad", bytes)).unwrap().err();
            assert_eq!(not.as_deref(), Some(what));
        }
    }

    /// Debian's etcd (package etcd-server), as the end-to-end run carries: built without
    /// linker flags, so its release comes from `.data`.
    #[test]
    fn debian_etcd_reads_as_its_release() {
        for (path, arg, says) in [
            ("/usr/bin/etcd", "--version", "etcd Version: "),
            ("/usr/bin/etcdctl", "version", "etcdctl version: "),
        ] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing; run `make deps` (as root) to install etcd-server and etcd-client"
            );
            let elf = read_elf(Path::new(path)).unwrap().unwrap();
            assert_eq!(elf.machine(), machine_of(Arch::Amd64), "{path}");
            assert_eq!(elf.kind_problem(), None);
            let info = elf.build_info().unwrap();
            assert_eq!(system_problem(&elf, info.as_ref()), None);
            let stamp = elf
                .go_stamp(info.as_ref(), "3.", component::ETCD.version_stamp)
                .unwrap()
                .expect(path);
            assert!(stamp.starts_with("3.4."), "{path}: {stamp}");
            // What the binary itself prints, run here only to compare.
            let out = std::process::Command::new(path).arg(arg).output().unwrap();
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(
                printed.contains(&format!("{says}{stamp}\n")),
                "{path}: {printed}"
            );
            assert_eq!(
                elf.go_stamp(info.as_ref(), "1.", component::KUBE_SCHEDULER.version_stamp)
                    .unwrap(),
                None,
                "{path}"
            );
            let program = info.as_ref().and_then(|i| i.setting_line("path")).unwrap();
            let name = Path::new(path).file_name().unwrap().to_str().unwrap();
            assert!(is_program(program, name, packages(name)), "{program}");
        }
    }

    /// The Kubernetes v1.20.2 binaries the end-to-end run builds, once they exist.
    #[test]
    fn kubernetes_binaries_read_as_their_release() {
        let dir = Path::new("/var/cache/kube-bundle/k8s-v1.20.2");
        for name in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            let elf = read_elf(&path).unwrap().unwrap();
            assert_eq!(elf.machine(), machine_of(Arch::Amd64));
            let info = elf.build_info().unwrap();
            assert_eq!(system_problem(&elf, info.as_ref()), None);
            // `make` records its linker flags, -X gitVersion among them.
            let info = info.expect("Go 1.18 build information");
            let stamp = info
                .linker_variable(|n| stamp_variable(component::KUBE_SCHEDULER.version_stamp, n));
            assert_eq!(stamp.as_deref(), Some("v1.20.2"), "{name}");
            let info = Some(info);
            // The same from `.data` alone, as for a build made with -trimpath.
            let stamp = elf.data_stamp("1.").unwrap();
            assert_eq!(stamp.as_deref(), Some("v1.20.2"), "{name}");
            // kube-apiserver links etcd's client and its version package: only the
            // program's path tells it from etcd.
            let program = info.as_ref().and_then(|i| i.setting_line("path")).unwrap();
            assert!(is_program(program, name, packages(name)), "{program}");
            assert!(!is_program(program, "etcd", packages("etcd")), "{program}");
        }
    }
}
