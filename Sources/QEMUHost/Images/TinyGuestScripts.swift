/// The shell scripts of the tiny guest, run by busybox: the initramfs's `/init`, and the root file
/// system's inittab, start-up script and `shutdown` (which qemu-guest-agent calls).
enum TinyGuestScripts {
  /// The line the root file system's start-up script prints on the console once the agent runs:
  /// a marker for a boot that can be watched without the agent.
  static let readyMarker = "vmlab-tiny: ready"

  /// The initramfs's `/init`: load the modules that reach the root disk (the list beside it, in
  /// order; a line `? name` may fail), mount the disk the command line names (`root=`, default
  /// /dev/vda) and hand over to its init. Any failure says why on the console and leaves a shell.
  static let initramfsInit = #"""
    #!/bin/busybox sh
    /bin/busybox mkdir -p /dev /proc /sys /newroot
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    /bin/busybox --install -s /bin
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    fail() {
      echo "vmlab-initramfs: $*"
      echo "vmlab-initramfs: dropping to a shell"
      exec sh
    }
    while read -r kind module; do
      if [ "$kind" = "?" ]; then
        insmod "/lib/modules/$module.ko" 2>/dev/null || echo "vmlab-initramfs: optional module $module not loaded"
      else
        insmod "/lib/modules/$module.ko" || fail "cannot load module $module"
      fi
    done < /lib/modules/load-order
    root=/dev/vda
    for word in $(cat /proc/cmdline); do
      case "$word" in root=/dev/*) root="${word#root=}" ;; esac
    done
    tries=0
    while [ ! -b "$root" ]; do
      tries=$((tries + 1))
      [ $tries -gt 100 ] && fail "no root disk $root after 10 s (is it attached as virtio-blk?)"
      sleep 0.1
    done
    mount -t ext4 -o rw "$root" /newroot || fail "cannot mount $root"
    [ -x /newroot/sbin/init ] || fail "$root has no /sbin/init"
    umount /proc /sys
    mount --move /dev /newroot/dev
    exec switch_root /newroot /sbin/init
    """#

  /// busybox init's table: the start-up script once, the agent and a console shell kept running,
  /// and on `poweroff`/`reboot` the file systems made read-only before the power goes.
  static let inittab = """
    ::sysinit:/etc/init.d/rcS
    ::respawn:/usr/sbin/vmlab-agent
    ttyS0::respawn:-/bin/sh
    ::ctrlaltdel:/sbin/reboot
    ::shutdown:/bin/sync
    ::shutdown:/bin/umount -a -r
    """

  /// `/etc/init.d/rcS`: the kernel's file systems, busybox's applet links, the host name (from
  /// `vmlab.hostname=` on the command line, else /etc/hostname), and the names udev would give
  /// the virtio serial ports (/dev/virtio-ports/NAME), which the agent opens.
  static let startup = #"""
    #!/bin/sh
    /bin/busybox --install -s
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
    mkdir -p /dev/pts /dev/shm
    mount -t devpts devpts /dev/pts
    mount -t tmpfs -o mode=0755 tmpfs /run
    mount -t tmpfs tmpfs /tmp
    mount -o remount,rw /
    name=$(cat /etc/hostname)
    for word in $(cat /proc/cmdline); do
      case "$word" in vmlab.hostname=*) name="${word#vmlab.hostname=}" ;; esac
    done
    hostname "$name"
    mkdir -p /dev/virtio-ports
    for port in /sys/class/virtio-ports/*; do
      [ -r "$port/name" ] && ln -sf "../${port##*/}" "/dev/virtio-ports/$(cat "$port/name")"
    done
    echo "\#(readyMarker) (host $name)" > /dev/console
    """#

  /// `/usr/sbin/vmlab-agent`: Debian's qemu-guest-agent on its virtio port. busybox init
  /// restarts it at once when it ends, so without a port (a VM started with no agent channel) it
  /// waits instead of failing in a tight loop.
  static let agent = """
    #!/bin/sh
    port=/dev/virtio-ports/org.qemu.guest_agent.0
    if [ ! -e "$port" ]; then
      sleep 30
      exit 1
    fi
    exec /usr/sbin/qemu-ga --method=virtio-serial --path="$port" --statedir=/run --logfile=/run/qemu-ga.log
    """

  /// `/sbin/shutdown` as qemu-guest-agent calls it (`-P|-H|-r +0 "message"`), done by busybox
  /// init so the root file system is unmounted cleanly first.
  static let shutdown = """
    #!/bin/sh
    case "$1" in
      -r) exec reboot ;;
      -H) exec halt ;;
      *) exec poweroff ;;
    esac
    """

  static let passwd = "root:x:0:0:root:/root:/bin/sh\n"
  static let group = "root:x:0:\n"
  static let profile = "export PATH=/sbin:/usr/sbin:/bin:/usr/bin\nexport PS1='\\h:\\w# '\n"
}
