# Shared by scripts/ensure-*.sh (sourced: . "$(dirname "$0")/lib.sh").
#
# apt_ensure TAG "PKGS" "WHAT" [apt-get options]: exit 0 when every package of
#   PKGS is installed, else install the missing ones with apt_install.
# apt_missing "PKGS": the packages of PKGS that dpkg does not list as installed.
# apt_install TAG "PKGS" "WHAT" [apt-get options]: install PKGS with apt-get
#   (once more after an apt-get update if the first try fails) and say so;
#   when there is no apt-get, no root or the install fails, say why, add WHAT
#   (what will skip), and exit 1. The log goes to /tmp/TAG.log.

apt_missing() {
    _missing=""
    for _p in $1; do
        dpkg-query -W -f='${Status}' "$_p" 2>/dev/null | grep -q "ok installed" || _missing="$_missing $_p"
    done
    echo "${_missing# }"
}

apt_install() {
    _tag=$1
    _pkgs=$2
    _what=$3
    shift 3
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$_tag: cannot install $_pkgs: apt-get not found (not Debian/Ubuntu); $_what"
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "$_tag: cannot install $_pkgs: not root (run: sudo apt-get install -y $_pkgs); $_what"
        exit 1
    fi
    echo "$_tag: installing $_pkgs"
    export DEBIAN_FRONTEND=noninteractive
    _log=/tmp/$_tag.log
    if ! apt-get install -y -q "$@" $_pkgs >"$_log" 2>&1; then
        apt-get update -q >>"$_log" 2>&1
        if ! apt-get install -y -q "$@" $_pkgs >>"$_log" 2>&1; then
            echo "$_tag: apt-get install $_pkgs failed (log: $_log); $_what"
            tail -n 5 "$_log"
            exit 1
        fi
    fi
    echo "$_tag: installed $_pkgs"
}

apt_ensure() {
    _missing=$(apt_missing "$2")
    if [ -z "$_missing" ]; then
        echo "$1: $2 already installed"
        exit 0
    fi
    _tag=$1
    _what=$3
    shift 3
    apt_install "$_tag" "$_missing" "$_what" "$@"
}
