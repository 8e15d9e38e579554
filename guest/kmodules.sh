# kmodules.sh - sourced by build-guest.sh and build-guest-arm64.sh (which
# define die): kernel modules out of an unpacked Debian linux-image
# package, dependencies first, for busybox insmod in the guest's /init.
#
#   kmodules MODDIR LIST NAME...
#     appends to file LIST the path of each named module's plain .ko and of
#     every module it needs, dependencies first, each once (LIST.names keeps
#     the names already there).

# Path of module $2 under $1 (file names may spell '_' as '-'; .ko.xz on newer kernels).
kmodule_path() {
	dash=$(echo "$2" | tr _ -)
	find "$1" \( -name "$2.ko" -o -name "$2.ko.xz" -o -name "$dash.ko" -o -name "$dash.ko.xz" \) |
		head -n 1
}

# Uncompressed copy of module file $1 (busybox insmod does not read .ko.xz).
kmodule_plain() {
	case "$1" in
	*.ko.xz)
		xz -dkf "$1"
		echo "${1%.xz}"
		;;
	*) echo "$1" ;;
	esac
}

# The modules module $1 (a .ko) depends on, comma-separated: kmod's modinfo
# when the host has it, else the "depends=" key of the .modinfo section,
# which is what modinfo prints.
kmodule_depends() {
	if command -v modinfo >/dev/null; then
		modinfo -F depends "$1"
	elif [ -x /sbin/modinfo ]; then
		/sbin/modinfo -F depends "$1"
	else
		tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1
	fi
}

kmodules() {
	local moddir list name src ko dep
	moddir=$1 list=$2
	shift 2
	touch "$list.names"
	for name in "$@"; do
		grep -qx "$name" "$list.names" && continue
		src=$(kmodule_path "$moddir" "$name")
		[ -n "$src" ] || die "module $name not found under $moddir"
		ko=$(kmodule_plain "$src")
		kmodules "$moddir" "$list" $(kmodule_depends "$ko" | tr , ' ')
		echo "$name" >>"$list.names"
		echo "$ko" >>"$list"
	done
}
