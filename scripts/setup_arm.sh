#!/usr/bin/env bash
# What benchmarks/arm_cost.py needs to count the ARM instructions a TFLite model executes, on an
# x86 machine with no phone (issue 26):
#   - Debian's qemu-user (the dynamic /usr/bin/qemu-aarch64 accepts -plugin; qemu-user-static does
#     not), gcc, and gcc-aarch64-linux-gnu (the tests build a tiny aarch64 program);
#   - the counting plugin, built into .arm/plugin/libinsn_count.so;
#   - an arm64 root: Debian bookworm's python3 (3.11) unpacked from its .debs (no chroot and no
#     binfmt_misc needed), plus the aarch64 wheels of ai-edge-litert and numpy in .arm/site;
#   - one `-L` prefix per CPU class with a fake /proc/cpuinfo and /sys CPU files whose identity
#     matches QEMU's `-cpu` model: XNNPACK's cpuinfo reads them, and the host's x86 files make it
#     crash, no files make it skip XNNPACK silently, a wrong identity picks the wrong kernels.
# Idempotent: does nothing when .arm/setup.json (written last) matches this script and the plugin.
# Usage: bash scripts/setup_arm.sh     (EDGEMOD_ARM_DIR: another folder; EDGEMOD_ARM_MIRROR: a
#        Debian mirror serving arm64, default: the host's bookworm mirror, else deb.debian.org)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
arm=${EDGEMOD_ARM_DIR:-$repo/.arm}
suite=bookworm                                 # python3.11, like the wheels' --python-version
wheels=(ai-edge-litert==2.3.0 numpy==2.3.5)   # the project's pins (pyproject.toml)
qemu=/usr/bin/qemu-aarch64
stamp=$arm/setup.json
step="starting"

reported=""
say() { echo "setup_arm: $*"; }
fail() { echo "setup_arm: FAILED while $step: $*" >&2; reported=1; exit 1; }
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -z "$reported" ]; then
    echo "setup_arm: FAILED (exit $rc) while $step; fix the cause above and run bash scripts/setup_arm.sh again" >&2
  fi
}
trap on_exit EXIT

inputs_sha=$(cat scripts/setup_arm.sh benchmarks/qemu_plugin/insn_count.c | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ -x "$qemu" ] && grep -q "\"inputs_sha256\": \"$inputs_sha\"" "$stamp"; then
  say "up to date: $arm"
  exit 0
fi
t0=$SECONDS
rm -f "$stamp"  # a run that stops half-way must not leave an old stamp saying "set up"

# 1. Debian packages (skipped when installed).
step="installing Debian packages"
need=()
for pkg in qemu-user gcc gcc-aarch64-linux-gnu debootstrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  as_root=""
  if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
  say "apt-get install ${need[*]}"
  $as_root apt-get update -qq
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
qemu_help=$("$qemu" -h 2>&1 || true)
[[ $qemu_help == *-plugin* ]] || fail "$qemu does not accept -plugin: install Debian's qemu-user (not qemu-user-static)"

# 2. The plugin (GPL-2.0-or-later, benchmarks/qemu_plugin/).
step="building the QEMU plugin"
mkdir -p "$arm/plugin"
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$arm/plugin/libinsn_count.so.tmp" benchmarks/qemu_plugin/insn_count.c
mv "$arm/plugin/libinsn_count.so.tmp" "$arm/plugin/libinsn_count.so"
say "built $arm/plugin/libinsn_count.so"

# 3. The arm64 root: bookworm's python3 and its libraries, unpacked. `debootstrap --download-only`
# resolves and verifies the packages without running any arm64 code.
host_mirror() {
  # The host's bookworm mirror (not -security/-updates), from deb822 .sources or one-line lists;
  # prints nothing when the host has none (then deb.debian.org is used).
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = "" } /Suites:[^\n]*bookworm( |\n|$)/ && !/Enabled: *no/ {
           if (match($0, /URIs: *[^ \n]+/)) { u = substr($0, RSTART, RLENGTH); sub(/URIs: */, "", u); print u; exit } }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f"
  done
}
root_spec="debian $suite minbase python3 libstdc++6"
if [ "$(cat "$arm/root/.complete" 2>/dev/null)" != "$root_spec" ]; then
  step="making the arm64 root"
  mirror=${EDGEMOD_ARM_MIRROR:-$(host_mirror | head -n1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  # debootstrap fetches with wget: give it apt's proxy, like apt itself would use
  eval "$(apt-config shell apt_proxy Acquire::http::Proxy)"
  if [ -n "${apt_proxy:-}" ] && [ -z "${http_proxy:-}" ]; then export http_proxy=$apt_proxy; fi
  say "downloading bookworm arm64 python3 from $mirror"
  rm -rf "$arm/download" "$arm/root.tmp"
  debootstrap --download-only --arch=arm64 --variant=minbase --include=python3,libstdc++6 \
    "$suite" "$arm/download" "$mirror" > "$arm/debootstrap.log" 2>&1 ||
    fail "debootstrap could not download from $mirror (log: $arm/debootstrap.log); set EDGEMOD_ARM_MIRROR to a Debian mirror serving arm64"
  mkdir -p "$arm/root.tmp"
  for deb in "$arm"/download/var/cache/apt/archives/*.deb; do dpkg -x "$deb" "$arm/root.tmp"; done
  # The guest's loader reads /etc/ld.so.cache through the -L prefix: give it the root's own cache,
  # not the host's x86 one. The path is absolute on the host, so the host's cache is never touched.
  "$qemu" -L "$arm/root.tmp" "$arm/root.tmp/sbin/ldconfig" -X -C "$arm/root.tmp/etc/ld.so.cache" \
    -f "$arm/root.tmp/etc/ld.so.conf"
  rm -rf "$arm/download" "$arm/root"
  echo "$root_spec" > "$arm/root.tmp/.complete"
  mv "$arm/root.tmp" "$arm/root"
  say "arm64 root ready: $arm/root ($(du -sh "$arm/root" | cut -f1))"
fi
guest_python=$arm/root/usr/bin/python3.11

# 4. The aarch64 wheels, fetched on the x86 side (pip's own index settings apply).
if [ "$(cat "$arm/site/.complete" 2>/dev/null)" != "${wheels[*]}" ]; then
  step="downloading the aarch64 wheels"
  py=python3
  if [ -x "$repo/.venv/bin/python" ]; then py=$repo/.venv/bin/python; fi
  say "pip install --target $arm/site ${wheels[*]} (manylinux_2_27_aarch64, cp311)"
  rm -rf "$arm/site" "$arm/site.tmp"
  "$py" -m pip install -q --disable-pip-version-check --no-warn-conflicts --no-compile \
    --platform manylinux_2_27_aarch64 --only-binary=:all: --python-version 3.11 --implementation cp \
    --target "$arm/site.tmp" "${wheels[@]}"
  echo "${wheels[*]}" > "$arm/site.tmp/.complete"
  mv "$arm/site.tmp" "$arm/site"
fi

# 5. Byte-compile with the guest's own interpreter, so runs (PYTHONDONTWRITEBYTECODE=1) read .pyc
# files and never write into the root.
step="byte-compiling the arm64 Python files"
"$qemu" -L "$arm/root" "$guest_python" -m compileall -q -j 0 "$arm/root/usr/lib/python3.11" "$arm/site" >/dev/null ||
  fail "the arm64 python could not byte-compile its files"

# 6. One -L prefix per CPU class: the root's folders, plus CPU files with that core's identity
# (QEMU's MIDR values; Features as Linux prints them for the core).
make_prefix() {  # class cpu implementer variant part revision max_khz features...
  local class=$1 cpu=$2 implementer=$3 variant=$4 part=$5 revision=$6 khz=$7
  shift 7
  local prefix=$arm/prefix/$class sys
  step="making the $class prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix/proc"
  for dir in bin etc lib sbin usr var; do ln -s "$arm/root/$dir" "$prefix/$dir"; done
  printf 'processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: 0x%02x\nCPU architecture: 8\nCPU variant\t: 0x%x\nCPU part\t: 0x%03x\nCPU revision\t: %d\n\n' \
    "$*" "$implementer" "$variant" "$part" "$revision" > "$prefix/proc/cpuinfo"
  sys=$prefix/sys/devices/system/cpu
  mkdir -p "$sys/cpu0/cpufreq" "$sys/cpu0/topology" "$sys/cpu0/regs/identification"
  for f in possible present online; do echo 0 > "$sys/$f"; done
  echo 0 > "$sys/kernel_max"
  echo "$khz" > "$sys/cpu0/cpufreq/cpuinfo_max_freq"
  echo "$khz" > "$sys/cpu0/cpufreq/cpuinfo_min_freq"
  for f in physical_package_id core_id cluster_id; do echo 0 > "$sys/cpu0/topology/$f"; done
  for f in core_siblings_list thread_siblings_list core_cpus_list cluster_cpus_list package_cpus_list; do
    echo 0 > "$sys/cpu0/topology/$f"
  done
  printf '0x%016x\n' $(( (implementer << 24) | (variant << 20) | (0xf << 16) | (part << 4) | revision )) \
    > "$sys/cpu0/regs/identification/midr_el1"
  printf '0x%016x\n' 0 > "$sys/cpu0/regs/identification/revidr_el1"
  # Smoke check: the guest imports the runtime and sees that identity.
  local seen
  seen=$(env -i PYTHONPATH="$arm/site" PYTHONDONTWRITEBYTECODE=1 "$qemu" -L "$prefix" -cpu "$cpu" "$guest_python" -c \
    'import ai_edge_litert.interpreter, numpy; print(open("/proc/cpuinfo").read().split("CPU part")[1].split()[1])' 2>&1) ||
    fail "the arm64 python under -cpu $cpu cannot import ai-edge-litert and numpy: $seen"
  [ "$seen" = "$(printf '0x%03x' "$part")" ] || fail "the arm64 python under -cpu $cpu sees CPU part '$seen', not its fake CPU files"
  say "prefix $class: -cpu $cpu, MIDR $(cat "$sys/cpu0/regs/identification/midr_el1")"
}
make_prefix arm64-a76 cortex-a76 0x41 0x4 0xd0b 1 2400000 \
  fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
make_prefix arm64-a53 cortex-a53 0x41 0x0 0xd03 4 1800000 \
  fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid

# 7. The stamp, last: arm_cost.find_setup() takes a folder without it as not set up.
step="writing $stamp"
qemu_version=$("$qemu" --version | head -n1 | sed 's/^qemu-aarch64 version //')
plugin_sha=$(sha256sum "$arm/plugin/libinsn_count.so" | cut -d' ' -f1)
python_version=$("$qemu" -L "$arm/root" "$guest_python" -c 'import platform; print(platform.python_version())')
packages=$(cd "$arm/site" && ls -d ./*.dist-info | sed -E 's|^\./||; s|\.dist-info$||' |
  awk -F- '{ printf "%s\"%s\": \"%s\"", (NR > 1 ? ", " : ""), $1, $2 }')
cat > "$stamp.tmp" <<EOF
{
  "inputs_sha256": "$inputs_sha",
  "qemu": "$qemu_version",
  "qemu_path": "$qemu",
  "plugin_sha256": "$plugin_sha",
  "debian": "$suite",
  "python": "$python_version",
  "packages": {$packages},
  "classes": {"arm64-a76": "cortex-a76", "arm64-a53": "cortex-a53"}
}
EOF
mv "$stamp.tmp" "$stamp"
say "done in $((SECONDS - t0)) s: $arm ($(du -sh "$arm" | cut -f1))"
