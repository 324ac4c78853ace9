# shellcheck shell=bash
# The Debian archives this machine's apt already uses, so that no script names a mirror
# or a release: sourced by scripts/deps.sh and scripts/e2e/build-k8s.sh.
#   apt_debian_uris           the URIs whose release origin is Debian (`apt-cache policy`)
#   apt_debian_archive_uri    the one of them that serves the main archive (not -security
#                             or -updates), for fetching from another suite such as `stable`
#   apt_debian_deb_src_stanzas [SKIP]
#                             deb822 stanzas that turn those archives' `deb` entries into
#                             deb-src with the same suites and Signed-By (SKIP: a .sources
#                             file to leave out, the caller's own)
#   apt_debian_deb_src_lines  the same for one-line sources.list entries

apt_debian_uris() {
    apt-cache policy | awk '
        $1 ~ /^[0-9]+$/ && $2 ~ /^(https?|file):/ && $NF == "Packages" { uri=$2; next }
        /^ *release / && uri != "" { if ($0 ~ /o=Debian[,]/) print uri; uri="" }
    ' | sed 's:/*$::' | sort -u
}

apt_debian_archive_uri() {
    # The main archive's releases are labelled `Debian` and their code name has no
    # `-updates`/`-security` suffix.
    apt-cache policy | awk '
        $1 ~ /^[0-9]+$/ && $2 ~ /^(https?|file):/ && $NF == "Packages" { uri=$2; next }
        /^ *release / && uri != "" {
            if ($0 ~ /o=Debian[,]/ && $0 ~ /l=Debian(,|$)/ && $0 ~ /n=[a-z]+(,|$)/) print uri
            uri=""
        }
    ' | sed 's:/*$::' | sort -u | head -n1
}

apt_debian_deb_src_stanzas() {
    local skip=${1:-} uris f
    uris=$(apt_debian_uris)
    (
        shopt -s nullglob
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ $f == "$skip" ]] && continue
            awk -v uris="$uris" '
                BEGIN { n = split(uris, u, "\n"); for (i = 1; i <= n; i++) ok[u[i]] = 1 }
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled) {
                        m = split(urilist, us, " "); keep = 0
                        for (i = 1; i <= m; i++) { x = us[i]; sub(/\/+$/, "", x); if (x in ok) keep = 1 }
                        if (keep) { print "Types: deb-src"; printf "%s", body; print "" }
                    }
                    types = ""; urilist = ""; body = ""; enabled = 1
                }
                BEGIN { enabled = 1 }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^Types:/ { t = $0; sub(/^Types:[ \t]*/, "", t); types = t; next }
                /^Enabled:[ \t]*no/ { enabled = 0 }
                /^URIs:/ { t = $0; sub(/^URIs:[ \t]*/, "", t); urilist = t }
                { body = body $0 "\n" }
                END { flush() }
            ' "$f"
        done
    )
}

apt_debian_deb_src_lines() {
    local uris
    uris=$(apt_debian_uris)
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
        awk -v uris="$uris" '
            BEGIN { n = split(uris, u, "\n"); for (i = 1; i <= n; i++) ok[u[i]] = 1 }
            $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                x = $i; sub(/\/+$/, "", x); if (x in ok) { sub(/^deb /, "deb-src "); print } }
        '
}
