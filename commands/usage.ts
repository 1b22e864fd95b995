/**
 * The command line's help text, and its one error type: gcr prints a
 * UsageError as `gcr: <message> (see: gcr help)` and exits with 125.
 *
 * @module
 */

/** A problem with the command line: printed with a hint, exit status 125. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** `gcr help`: every command and option. */
export const USAGE = `usage: gcr run [options] <image> [command [args…]]
       gcr explain run [options] <image> [command [args…]]
       gcr explain create [--bundle DIR] [ID]   the steps create would take for an OCI bundle, hooks too
       gcr pull [pull options] <source>
       gcr images [--rootfs-dir DIR]
       gcr ps [-a] [-q]      containers (running ones; -a: all)
       gcr exec [-d] [-e K=V] [-w DIR] [-u USER] <container> <command> [args…]
       gcr logs [-f] <container>
       gcr stop [-t SECONDS] <container>…   SIGTERM, then SIGKILL
       gcr kill [-s SIGNAL] <container>…
       gcr inspect <container>…
       gcr rm [-f] <container>…  remove stopped containers (-f: running ones too)
       gcr prune             remove every stopped container

OCI runtime (runc's command line, for engines such as podman):
       gcr [--root DIR] [--log FILE] [--log-format json] [--rootless true|false|auto] create [--bundle B]
           [--pid-file F] [--console-socket S] [--no-pivot] [--preserve-fds N] <id>
       gcr start|state|pause|resume <id>;  gcr kill [--all] <id> [SIGNAL];  gcr delete [--force] <id>
       gcr exec --process P.json [--detach] [--pid-file F] [--console-socket S] <id>
       gcr exec [-u UID[:GID]] [-e K=V]… [--cwd DIR] [--detach] <id> CMD…   (runc's form, no process file)
       gcr ps [--format json] <id>;  gcr features;  gcr --version
       gcr update [--resources FILE|-] [--memory SIZE] [--memory-swap SIZE] [--memory-reservation SIZE]
           [--cpu-share N] [--cpu-period US] [--cpu-quota US] [--cpuset-cpus LIST] [--cpuset-mems LIST]
           [--pids-limit N] <id>   new limits for a live container (--resources: linux.resources
           JSON, as containerd sends it; 0 or absent leaves a limit, -1 lifts it)
       --trace-dir DIR (before the verb): every step, call and hook of each verb, appended to
           DIR/<id>.trace, one file per container (engines pass it as a runtime argument)
       --rootless auto (the default, as runc's): rootless when not uid 0, or uid 0 in a user
           namespace that is not the host's (rootless podman's); state then under $XDG_RUNTIME_DIR/gcr

<image> is a folder under rootfs/ (or --rootfs-dir, or $GCR_ROOT), or a path. When it
is neither (nor busybox) but an image reference, gcr pulls it first.

options (before <image>; everything after it is the command):
  -e, --env KEY=VALUE   set an environment variable (KEY alone: take it from gcr's)
  -w, --workdir DIR     working directory inside the container (default /)
      --hostname NAME   hostname (default: the container id)
  -d, --detach          run in the background: print the id; output goes to gcr logs
      --name NAME       a unique name for gcr ps, exec, logs, stop, rm
  -i, -t                accepted (gcr shares its terminal with the container)
      --net none|host|bridge
                        a network namespace with only loopback (default), the host's, or one on
                        the gcr0 bridge with an address, NAT and -p (root)
  -p, --publish [IP:]HOST:CONTAINER[/udp]
                        with --net bridge: a container port on the host
  -m, --memory SIZE     memory limit (64m, 1g, …); past it the kernel kills the container (exit 137)
      --cpus N          CPU time limit in CPUs (0.5: half of one)
      --pids-limit N    at most N processes and threads
      --dns ADDRESS     a name server for the container's /etc/resolv.conf
      --limits-optional run without the limits where the host cannot give them (rootless, no delegated cgroup v2)
      --cap-add CAP     keep a capability beyond Docker's default set (ALL for every one)
      --cap-drop CAP    drop a capability from it
  -u, --user U[:G]      run as a user (name or uid) and group of the image's /etc/passwd, /etc/group
  -v, --volume HOST:CONTAINER[:ro]
                        bind a host folder or file into the container (read-only with :ro)
      --rm              remove the container's state folder (its writes) when it exits
      --init            run a real init (catatonit or tini from the host) as pid 1
      --rootfs-copy     run on a copy of the image instead of an overlay (kernels without
                        overlayfs in user namespaces)
      --security-opt seccomp=unconfined|PROFILE.json, no-new-privileges=false
      --rootfs-dir DIR  folder that holds images (default ./rootfs)
      --trace           show every step, its libc calls, and what changed
      --step            pause before each step until Enter
  -q, --quiet           no log lines

<source> of gcr pull: a reference (alpine, localhost:5000/team/app:1.2, name@sha256:…),
docker-archive:PATH (docker save output) or oci:DIR[:TAG] (an OCI image layout).
It goes to <rootfs-dir>/<name>; the blob cache is $GCR_CACHE, else /var/cache/gcr
(root) or $XDG_CACHE_HOME/gcr (rootless).

Containers' state (the overlay's upper folder, container.json) is in $GCR_STATE, else
/var/lib/gcr (root) or $XDG_DATA_HOME/gcr (rootless), under containers/<id>.

pull options:
      --platform OS/ARCH[/VARIANT]  from a multi-platform image (default: the host's)
      --insecure                    plain http (always allowed for localhost)
  -u, --username USER               with --password-stdin: the password is read from stdin
      --password-stdin
      --rootfs-dir DIR              folder that holds images (default ./rootfs)
      --name NAME                   folder name (default: the repository's last part,
                                    or the archive's or layout's base name)
  -q, --quiet                       no progress`;
