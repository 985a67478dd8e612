# Shell functions for staging a FROM-scratch root filesystem, sourced by
# deploy/images/build.sh and testing/images/servers.sh.

# Copies an executable (to `dest`, default its own path) and every library it
# links, at the paths the dynamic loader looks for them, into the root filesystem.
add_elf() {
    local root=$1 elf=$2 dest=${3:-$2}
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$elf" "$root$dest"
    local libs
    # A static executable (the docker CLI) links nothing, and ldd says so with exit 1.
    libs=$(ldd "$elf" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}') || true
    for lib in $libs; do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

# /etc/passwd and /etc/group naming root and the non-root user 65532 the images run as.
add_users() {
    local root=$1
    mkdir -p "$root/etc"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nferry:x:65532:65532:ferry:/tmp:/sbin/nologin\n' > "$root/etc/passwd"
    printf 'root:x:0:\nferry:x:65532:\n' > "$root/etc/group"
}
