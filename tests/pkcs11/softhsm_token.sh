#!/usr/bin/env bash
# Makes a SoftHSM2 token (Debian's softhsm2, a real PKCS#11 module) for the
# PKCS#11 tests, in DIR, which must be empty or not exist:
#
#     tests/pkcs11/softhsm_token.sh [--more] DIR
#
# DIR gets:
#   softhsm2.conf    the token's configuration: export SOFTHSM2_CONF=DIR/softhsm2.conf
#                    before loading the module, or it uses the system's tokens
#   tokens/          the token's storage
#   pin, so-pin      the user PIN and the security officer's PIN
#   module           the module's path (also printed, as the only line on stdout)
#   id_rsa2048.pub, id_rsa4096.pub, id_ecdsa256.pub, id_ecdsa384.pub
#                    the public halves of the token's keys, as ssh-keygen writes
#                    them (comment: the key's label)
#   keys             the keys' names (id_rsa2048, ...), one a line
# --more adds id_ecdsa521 (ssh-keygen) and id_ed25519 (made with openssl:
# ssh-keygen writes Ed25519 keys only in its own format; the .pub is then
# built from the raw public key).
# The keys are made with ssh-keygen and imported with softhsm2-util (label
# and CKA_ID as in the table below); the private key files are deleted once
# imported, so only the token can sign with them.
#
# Exit status: 0 done; 77 softhsm2 is not installed (scripts/setup.sh installs
# it); 1 anything else.
set -euo pipefail

more=0
if [ "${1:-}" = --more ]; then
    more=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--more] DIR" >&2
    exit 1
fi
dir=$1

die() {
    echo "softhsm_token: $*" >&2
    exit 1
}

if ! command -v softhsm2-util >/dev/null 2>&1; then
    echo "softhsm_token: softhsm2-util not found (package softhsm2; scripts/setup.sh installs it)" >&2
    exit 77
fi
# The module from the package's own file list, wherever its multiarch
# directory is; the real file, as an allow-list would name it.
module=
while IFS= read -r f; do
    if [ -f "$f" ]; then
        module=$(readlink -f "$f")
        break
    fi
done < <(dpkg -L libsofthsm2 2>/dev/null | grep '/libsofthsm2\.so$' || true)
if [ -z "$module" ]; then
    echo "softhsm_token: libsofthsm2.so not found (package libsofthsm2, with softhsm2)" >&2
    exit 77
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
mkdir -m 700 "$dir/tokens"
cat >"$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF=$dir/softhsm2.conf

# Fixed PINs: the token is a throw-away test fixture.
pin=271828
so_pin=31415926
printf '%s\n' "$pin" >"$dir/pin"
printf '%s\n' "$so_pin" >"$dir/so-pin"
printf '%s\n' "$module" >"$dir/module"

softhsm2-util --init-token --free --label keyward-test --pin "$pin" --so-pin "$so_pin" \
    >"$dir/init.log" 2>&1 || {
    cat "$dir/init.log" >&2
    die "softhsm2-util --init-token failed"
}

# name  ssh-keygen arguments  CKA_ID (hex)
keys=(
    "id_rsa2048 -t rsa -b 2048 01"
    "id_rsa4096 -t rsa -b 4096 02"
    "id_ecdsa256 -t ecdsa -b 256 03"
    "id_ecdsa384 -t ecdsa -b 384 04"
)
[ $more = 0 ] || keys+=("id_ecdsa521 -t ecdsa -b 521 05")
for k in "${keys[@]}"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    set -- $k
    name=$1 id=${*: -1}
    args=("${@:2:$#-2}")
    label="keyward-test-$name"
    # -m PKCS8: the private key as PKCS#8 PEM, which softhsm2-util imports.
    ssh-keygen -q "${args[@]}" -m PKCS8 -N '' -C "$label" -f "$dir/$name" ||
        die "ssh-keygen $name failed"
    softhsm2-util --import "$dir/$name" --token keyward-test --pin "$pin" --id "$id" \
        --label "$label" >>"$dir/import.log" 2>&1 || {
        cat "$dir/import.log" >&2
        die "softhsm2-util --import $name failed"
    }
    # The .pub is ssh-keygen's: the test compares the token's blobs with it.
    rm -f "$dir/$name"
    echo "$name" >>"$dir/keys"
done

if [ $more = 1 ]; then
    name=id_ed25519 label=keyward-test-id_ed25519
    openssl genpkey -algorithm ed25519 -out "$dir/$name" 2>>"$dir/import.log" ||
        die "openssl genpkey ed25519 failed"
    softhsm2-util --import "$dir/$name" --token keyward-test --pin "$pin" --id 06 \
        --label "$label" >>"$dir/import.log" 2>&1 || {
        cat "$dir/import.log" >&2
        die "softhsm2-util --import $name failed"
    }
    # The blob: string "ssh-ed25519", string the 32-byte key (the last 32
    # bytes of the DER SubjectPublicKeyInfo).
    blob=$({
        printf '\000\000\000\013ssh-ed25519\000\000\000\040'
        openssl pkey -in "$dir/$name" -pubout -outform DER | tail -c 32
    } | base64 -w0) || die "cannot make $name.pub"
    echo "ssh-ed25519 $blob $label" >"$dir/$name.pub"
    rm -f "$dir/$name"
    echo "$name" >>"$dir/keys"
fi

echo "$module"
