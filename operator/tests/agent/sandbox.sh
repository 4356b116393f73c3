#!/bin/sh
# One container of a pod, started by the test node agent (operator/tests/agent) as a kubelet
# and a container runtime would start it: in the pod's network namespace (the agent runs
# this under `ip netns exec`, which also gives it a mount namespace of its own), with the
# pod's name as host name, and a root of its own: the machine's directories bound in, /etc
# writable (an overlay, so that the pod's volumes can be mounted under it and /etc/hosts
# replaced) and the pod's mounts bound over it. A test fixture, not part of the product.
#
# Usage: sandbox.sh SCRATCH HOSTNAME MOUNTS -- COMMAND [ARGS...]
#   SCRATCH  an empty directory for the root (a tmpfs is mounted on it)
#   MOUNTS   a file of "SOURCE TARGET" lines, each bound at TARGET in the new root
#            (/usr/local/bin from the image's directory, /etc/hosts, volumes)
set -eu
scratch=$1 host=$2 mounts=$3
shift 3
[ "$1" = -- ] && shift
hostname "$host"
mount -t tmpfs -o mode=0755 sandbox "$scratch"
mkdir "$scratch/root" "$scratch/upper" "$scratch/work"
root=$scratch/root
for entry in /*; do
  name=${entry#/}
  if [ -L "$entry" ]; then
    ln -s "$(readlink "$entry")" "$root/$name"
  elif [ -d "$entry" ]; then
    mkdir "$root/$name"
    case $name in
      etc) mount -t overlay sandbox-etc \
             -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" "$root/etc" ;;
      *) mount --rbind "$entry" "$root/$name" ;;
    esac
  fi
done
# TARGET as a path of the new root, its symbolic links followed inside the root: an absolute
# link (Debian's /var/run -> /run) points into the root, not at the machine's directory, which
# a mount through it would reach instead (a service account token at
# /var/run/secrets/kubernetes.io/serviceaccount, say).
inroot() {
  rest=${1#/} at=""
  while [ -n "$rest" ]; do
    part=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest="" ;; esac
    if [ -L "$root$at/$part" ]; then
      link=$(readlink "$root$at/$part")
      case $link in /*) at="" link=${link#/} ;; esac
      rest=$link${rest:+/$rest}
      continue
    fi
    at=$at/$part
  done
  echo "$at"
}
while read -r source target; do
  [ -n "$source" ] || continue
  target=$(inroot "$target")
  if [ -d "$source" ]; then mkdir -p "$root$target"; else
    mkdir -p "$(dirname "$root$target")"; [ -e "$root$target" ] || : > "$root$target"; fi
  mount --bind "$source" "$root$target"
done < "$mounts"
exec chroot "$root" "$@"
