# gcr, the program: what runs when anyone (a person, podman, Docker,
# containerd's shim) runs ./gcr. It starts Deno on gcr's bundle, and costs
# a few hundred microseconds doing so.
#
# Why not a shell script: engines run the runtime three or more times for
# each container (create, start, state, kill, delete), each a new Deno, so
# anything before Deno is paid every time. A /bin/sh script that only
# exec'd deno cost 2.5 ms more than running deno directly, and the check
# that the bundle is still newer than every source (so an edit to the
# checkout is never run stale) 1.4 ms more (measured: bench/README.md).
# This program does the same check with one stat(2) per source.
#
# It:
#   0. starts a created container, or deletes a stopped one, itself when
#      an engine asks (`start`, `delete`), by the plans create left beside
#      its record (try_native, below), and exits: no Deno at all for the
#      two verbs engines call for every container;
#   1. finds itself (/proc/self/exe, symlinks resolved) and so the checkout;
#   2. reads .cache/bundle/launch, which launch/gcr.sh writes when it
#      builds the bundle: NUL-terminated fields, first the command that
#      runs the bundle (deno's absolute path, its options, main.js), then an
#      empty field, then every source the bundle was built from;
#   3. stats .cache/bundle/stamp and every source: none may be newer;
#   4. execs the command with its own arguments after it, and GCR_SELF set
#      to its own path (how gcr starts itself again: gcr-monitor, hooks).
#
# Anything else it leaves to launch/gcr.sh, run by /bin/sh with the same
# arguments and GCR_SELF: no bundle yet, a source newer than it, a failed
# read or exec, GCR_NO_BUNDLE set (run the sources), or no HOME (Deno's
# cache folder is then the script's choice). That script builds the bundle
# (and this program's launch file) or runs the sources.
#
# No libc, no data section, no relocations: position-independent x86_64
# code that ffi/native_program.ts wraps in a 176-byte ELF header, written
# to ./gcr by `deno task native`; tests/launch/launcher_test.ts checks
# that the file is what this source assembles to.

        .intel_syntax noprefix
        .text
        .globl  _start

        # The frame, at rbp: this program's own path as "GCR_SELF=/…/gcr",
        # a path being made, a stat buffer, the launch file.
        .set    SELF, 0
        .set    PATH, 4096
        .set    STAT, 8192
        .set    LAUNCH, 12288
        .set    LAUNCH_MAX, 65536
        .set    FRAME, LAUNCH + LAUNCH_MAX + 16
        .set    PREFIX_MAX, 32                  # fields before the empty one

_start:
        mov     r12, [rsp]                      # argc
        test    r12, r12
        jz      no_self                         # exec'd with no argv at all
        lea     r13, [rsp + 8]                  # argv
        lea     r14, [rsp + r12*8 + 16]         # envp
        call    try_native                      # returns only when Deno is needed
        sub     rsp, FRAME
        mov     rbp, rsp

        # readlink("/proc/self/exe", SELF + 9, 4000): shorter than PATH by
        # more than the longest suffix make_path adds.
        lea     rdi, [rip + proc_self_exe]
        lea     rsi, [rbp + SELF + 9]
        mov     edx, 4000
        mov     eax, 89
        syscall
        test    rax, rax
        jle     no_self
        cmp     rax, 4000
        jae     no_self
        mov     byte ptr [rbp + SELF + 9 + rax], 0
        mov     rcx, 0x464c45535f524347         # "GCR_SELF"
        mov     [rbp + SELF], rcx
        mov     byte ptr [rbp + SELF + 8], '='
        # r15: the checkout's length (up to the last '/').
        mov     r15, rax
1:      dec     r15
        js      no_self
        cmp     byte ptr [rbp + SELF + 9 + r15], '/'
        jne     1b

        # envp for deno (or the script): GCR_SELF first, then every variable
        # but an older GCR_SELF. On the way, r8 collects what sends the run
        # to the script: 1 = HOME, DENO_DIR or XDG_CACHE_HOME set (Deno has
        # a cache folder), 2 = XDG_RUNTIME_DIR set, 4 = GCR_NO_BUNDLE set;
        # the script when 4, or 2 without 1 (rootless podman's start and
        # delete: the script puts Deno's cache in the user's runtime folder).
        mov     rcx, r14
        xor     edx, edx                        # envc
2:      cmp     qword ptr [rcx + rdx*8], 0
        je      3f
        inc     rdx
        jmp     2b
3:      lea     rax, [r12 + rdx]                # the copies below go on the stack:
        cmp     rax, 131072                     # 1 MB of pointers at most
        ja      too_many
        lea     rax, [rdx*8 + 16 + 15]
        and     rax, -16
        sub     rsp, rax
        mov     rbx, rsp                        # rbx: the new envp
        lea     rax, [rbp + SELF]
        mov     [rbx], rax
        mov     r9d, 1                          # entries written
        xor     r8d, r8d
        mov     rcx, r14
4:      mov     rsi, [rcx]
        test    rsi, rsi
        jz      6f
        add     rcx, 8
        lea     rdi, [rip + gcr_self_is]
        call    value_of
        test    rax, rax
        jnz     4b                              # dropped: ours is first
        mov     [rbx + r9*8], rsi
        inc     r9
        mov     r10d, 1
        lea     rdi, [rip + home_is]
        call    value_of
        test    rax, rax
        jnz     5f
        lea     rdi, [rip + deno_dir_is]
        call    value_of
        test    rax, rax
        jnz     5f
        lea     rdi, [rip + xdg_cache_home_is]
        call    value_of
        test    rax, rax
        jnz     5f
        mov     r10d, 2
        lea     rdi, [rip + xdg_runtime_dir_is]
        call    value_of
        test    rax, rax
        jnz     5f
        mov     r10d, 4
        lea     rdi, [rip + gcr_no_bundle_is]
        call    value_of
        test    rax, rax
        jz      4b
5:      cmp     byte ptr [rax], 0               # empty counts as unset, as in sh's -z
        je      4b
        or      r8d, r10d
        jmp     4b
6:      mov     qword ptr [rbx + r9*8], 0

        # argv for deno (or the script): up to PREFIX_MAX fields, then ours.
        lea     rax, [r12*8 + PREFIX_MAX*8 + 16 + 15]
        and     rax, -16
        sub     rsp, rax                        # rsp: the new argv
        test    r8d, 4
        jnz     script
        and     r8d, 3
        cmp     r8d, 2
        je      script

        # The launch file into LAUNCH, NUL-terminated twice after its end.
        lea     rsi, [rip + launch_name]
        call    make_path
        mov     rdi, rax                        # open(PATH, O_RDONLY|O_CLOEXEC)
        mov     esi, 0x80000
        xor     edx, edx
        mov     eax, 2
        syscall
        test    eax, eax
        js      script
        mov     edi, eax
        xor     r10d, r10d                      # bytes read
7:      lea     rsi, [rbp + LAUNCH + r10]
        mov     edx, LAUNCH_MAX
        sub     rdx, r10
        jz      8f                              # full: too big, the script decides
        xor     eax, eax                        # read(fd, …)
        syscall
        test    rax, rax
        js      8f
        jz      9f
        add     r10, rax
        jmp     7b
8:      mov     eax, 3                          # close(fd), then the script
        syscall
        jmp     script
9:      mov     eax, 3                          # close(fd)
        syscall
        test    r10, r10
        jz      script
        mov     word ptr [rbp + LAUNCH + r10], 0
        lea     r10, [rbp + LAUNCH + r10]       # r10: the end of the fields

        # The stamp's mtime: r8 seconds, r9 nanoseconds.
        lea     rsi, [rip + stamp_name]
        call    make_path
        mov     rdi, rax                        # stat(PATH, STAT)
        lea     rsi, [rbp + STAT]
        mov     eax, 4
        syscall
        test    eax, eax
        jnz     script
        mov     r8, [rbp + STAT + 88]
        mov     r9, [rbp + STAT + 96]

        # The command's fields into argv (rsp), up to the empty field.
        lea     rsi, [rbp + LAUNCH]
        xor     edx, edx                        # fields so far
10:     cmp     rsi, r10
        jae     script                          # no empty field: not a launch file
        cmp     byte ptr [rsi], 0
        je      12f
        cmp     edx, PREFIX_MAX
        jae     script
        mov     [rsp + rdx*8], rsi
        inc     edx
11:     lodsb                                   # past this field's NUL
        test    al, al
        jnz     11b
        jmp     10b
12:     test    edx, edx
        jz      script
        inc     rsi

        # Every source: stat it; one newer than the stamp sends us to the
        # script. A source that is gone is not newer (as sh's -nt).
        mov     r14, rsi                        # r14: this source's path
13:     cmp     r14, r10
        jae     15f
        mov     rdi, r14                        # stat(source, STAT)
        lea     rsi, [rbp + STAT]
        mov     eax, 4
        syscall
        test    eax, eax
        jnz     14f
        mov     rax, [rbp + STAT + 88]
        cmp     rax, r8
        jg      script
        jl      14f
        mov     rax, [rbp + STAT + 96]
        cmp     rax, r9
        jg      script
14:     inc     r14                             # past this path's NUL
        cmp     byte ptr [r14 - 1], 0
        jne     14b
        jmp     13b

        # Fresh: execve(field 0, fields + our arguments, envp).
15:     lea     rdi, [rsp + rdx*8]
        lea     rsi, [r13 + 8]
        lea     rcx, [r12 - 1]
        rep movsq
        mov     qword ptr [rdi], 0
        mov     rdi, [rsp]
        mov     rsi, rsp
        mov     rdx, rbx
        mov     eax, 59
        syscall
        # The exec failed (deno moved?): the script finds deno on PATH.

script:
        # execve("/bin/sh", {"sh", "<checkout>/launch/gcr.sh", our arguments…}, envp)
        lea     rsi, [rip + script_name]
        call    make_path
        lea     rcx, [rip + sh_name]
        mov     [rsp], rcx
        mov     [rsp + 8], rax
        lea     rdi, [rsp + 16]
        lea     rsi, [r13 + 8]
        lea     rcx, [r12 - 1]
        rep movsq
        mov     qword ptr [rdi], 0
        lea     rdi, [rip + bin_sh]
        mov     rsi, rsp
        mov     rdx, rbx
        mov     eax, 59
        syscall
        lea     rsi, [rip + no_sh_message]
        mov     edx, no_sh_message_end - no_sh_message
        jmp     fail

no_self:
        lea     rsi, [rip + no_self_message]
        mov     edx, no_self_message_end - no_self_message
        jmp     fail
too_many:
        lea     rsi, [rip + too_many_message]
        mov     edx, too_many_message_end - too_many_message
fail:
        mov     edi, 2                          # write(2, message, length)
        mov     eax, 1
        syscall
        mov     edi, 125                        # exit_group(125): gcr itself failed, as main.ts says it
        mov     eax, 231
        syscall
        hlt

        # `start` and `delete` without Deno: an engine starts and deletes
        # every container, and a Deno start-up was most of each verb's time
        # (bench/README.md). try_native takes an engine's arguments:
        #   [--root DIR | --log FILE | --log-format F | --systemd-cgroup]…
        #   start ID    or    delete [--force | -f] ID
        # (--root=DIR and the like too), finds the container's runtime
        # folder as state/paths.ts does, and runs what create left there:
        #   - delete: the container's delete plan (commands/delete_plan.ts
        #     has the format and why each op is safe to repeat), and exits
        #     0. It returns, for Deno's delete, on anything the plan does
        #     not cover: the init's pid exists, a process is left in the
        #     cgroup, a file it does not list. Every op is one system call
        #     that may be repeated, so what a stopped plan leaves, Deno's
        #     delete finishes.
        #   - start: with the start plan, Deno's start's calls for a
        #     container without hooks (start_gate, below), and exits 0.
        # It returns, for Deno with the arguments unchanged, on anything
        # else: other options, an id gcr would refuse, a runtime folder it
        # would find otherwise than here, no plan or one it cannot read. In:
        # r12 argc, r13 argv, r14 envp, which it keeps, as it keeps rbx, rbp
        # and r15.
        .set    NAT_PATH, 0
        .set    NAT_ROOT_MAX, 4000
        .set    NAT_LINK, 4352
        .set    NAT_STAT, NAT_LINK + 64
        .set    NAT_PLAN, NAT_STAT + 1024
        .set    NAT_PLAN_MAX, 16384
        .set    NAT_VERB, NAT_PLAN + NAT_PLAN_MAX + 16  # 'd' (delete) or 's' (start)
        .set    NAT_END, NAT_VERB + 8                   # where PATH's "<folder>/<id>" ends
        .set    NAT_FRAME, NAT_END + 8

try_native:
        push    rbx
        push    rbp
        push    r15
        sub     rsp, NAT_FRAME
        mov     rbp, rsp
        xor     r15d, r15d                      # r15: the runtime folder, once known
        lea     rbx, [r13 + 8]                  # rbx: the argument looked at
30:     mov     rsi, [rbx]
        test    rsi, rsi
        jz      native_decline
        cmp     byte ptr [rsi], '-'
        jne     33f                             # not an option: the verb
        lea     rdi, [rip + opt_root]
        call    value_of
        test    rax, rax
        jz      31f
        call    option_value
        test    rax, rax
        jz      native_decline
        mov     r15, rax                        # the last --root counts, as in main.ts
        jmp     30b
31:     lea     rdi, [rip + opt_log_format]     # before --log, its prefix
        call    value_of
        test    rax, rax
        jnz     32f
        lea     rdi, [rip + opt_log]
        call    value_of
        test    rax, rax
        jz      34f
32:     call    option_value                    # a log: delete writes none when it succeeds
        test    rax, rax
        jz      native_decline
        jmp     30b
34:     lea     rdi, [rip + opt_systemd_cgroup] # only create makes cgroups
        call    is_word
        test    eax, eax
        jz      native_decline
        add     rbx, 8
        jmp     30b

33:     lea     rdi, [rip + verb_start]
        call    is_word
        test    eax, eax
        jz      80f
        mov     byte ptr [rbp + NAT_VERB], 's'
        add     rbx, 8
        mov     rsi, [rbx]
        test    rsi, rsi
        jz      native_decline
        jmp     36f
80:     lea     rdi, [rip + verb_delete]
        call    is_word
        test    eax, eax
        jz      native_decline
        mov     byte ptr [rbp + NAT_VERB], 'd'
        add     rbx, 8
        mov     rsi, [rbx]
        test    rsi, rsi
        jz      native_decline
        lea     rdi, [rip + opt_force]          # stopped or not: a live one is Deno's
        call    is_word
        test    eax, eax
        jnz     35f
        lea     rdi, [rip + opt_f]
        call    is_word
        test    eax, eax
        jz      36f
35:     add     rbx, 8
        mov     rsi, [rbx]
        test    rsi, rsi
        jz      native_decline
36:     cmp     qword ptr [rbx + 8], 0          # the id, and nothing after it
        jne     native_decline

        # The id, as CONTAINER_ID (state/paths.ts) has it, and so never a
        # path: [A-Za-z0-9][A-Za-z0-9_.+-]{0,127}. r8: the id, r9: its length.
        mov     r8, rsi
        xor     ecx, ecx
37:     movzx   eax, byte ptr [rsi + rcx]
        test    al, al
        jz      39f
        cmp     ecx, 128
        jae     native_decline
        mov     edx, eax
        or      edx, 0x20                       # A-Z as a-z
        sub     edx, 'a'
        cmp     edx, 25
        jbe     38f
        lea     edx, [rax - '0']
        cmp     edx, 9
        jbe     38f
        test    ecx, ecx
        jz      native_decline                     # the first is a letter or a digit
        cmp     al, '_'
        je      38f
        cmp     al, '.'
        je      38f
        cmp     al, '+'
        je      38f
        cmp     al, '-'
        jne     native_decline
38:     inc     ecx
        jmp     37b
39:     test    ecx, ecx
        jz      native_decline
        mov     r9, rcx

        # The runtime folder, as runtimeDir (state/paths.ts) finds it:
        # --root, else $GCR_RUN, else (no $GCR_STATE) /run/gcr for root
        # outside a user namespace (or inside one with USER=root, as runc
        # has it), else $XDG_RUNTIME_DIR/gcr. r10: a suffix ("/gcr" or "").
        lea     r10, [rip + slash_gcr + 4]      # ""
        test    r15, r15
        jnz     46f
        mov     rcx, r14
        xor     ebx, ebx                        # 1: USER=root, 2: $GCR_STATE set
        xor     edx, edx                        # rdx: $XDG_RUNTIME_DIR
40:     mov     rsi, [rcx]
        test    rsi, rsi
        jz      43f
        add     rcx, 8
        lea     rdi, [rip + gcr_run_is]
        call    set_value_of
        test    rax, rax
        jz      41f
        mov     r15, rax
        jmp     40b
41:     lea     rdi, [rip + gcr_state_is]
        call    set_value_of
        test    rax, rax
        jz      42f
        or      ebx, 2
        jmp     40b
42:     lea     rdi, [rip + xdg_runtime_dir_is]
        call    set_value_of
        test    rax, rax
        jz      44f
        mov     rdx, rax
        jmp     40b
44:     lea     rdi, [rip + user_root_is]
        call    is_word
        or      ebx, eax
        jmp     40b
43:     test    r15, r15
        jnz     46f
        test    ebx, 2
        jnz     native_decline                     # $GCR_STATE/run (tests' folders): Deno's
        mov     r15, rdx
        mov     eax, 102                        # getuid()
        syscall
        test    eax, eax
        jnz     45f
        lea     rdi, [rip + proc_self_ns_user]  # readlink("/proc/self/ns/user", LINK, 64)
        lea     rsi, [rbp + NAT_LINK]
        mov     edx, 64
        mov     eax, 89
        syscall
        test    rax, rax
        js      native_decline                     # no such link: paths.ts reads uid_map, Deno's
        cmp     rax, initial_user_ns_end - initial_user_ns
        jne     47f
        lea     rsi, [rbp + NAT_LINK]
        lea     rdi, [rip + initial_user_ns]
        mov     ecx, initial_user_ns_end - initial_user_ns
        repe cmpsb
        je      48f
47:     test    ebx, 1
        jz      45f
48:     lea     r15, [rip + run_gcr]
        jmp     46f
45:     test    r15, r15                        # $XDG_RUNTIME_DIR/gcr
        jz      native_decline                     # /tmp/gcr-<uid>: Deno's
        lea     r10, [rip + slash_gcr]

        # PATH = folder + suffix + "/" + id (NAT_END), then the verb's plan:
        # the folder absolute and without "/." (the delete plan's own rule
        # for its paths).
46:     cmp     byte ptr [r15], '/'
        jne     native_decline
        lea     rdi, [rbp + NAT_PATH]
        lea     rdx, [rbp + NAT_PATH + NAT_ROOT_MAX]
        mov     rsi, r15
49:     lodsb
        test    al, al
        jz      50f
        cmp     al, '.'
        jne     51f
        cmp     byte ptr [rdi - 1], '/'
        je      native_decline
51:     stosb
        cmp     rdi, rdx
        jae     native_decline
        jmp     49b
50:     mov     rsi, r10
52:     lodsb
        test    al, al
        jz      53f
        stosb
        jmp     52b
53:     mov     al, '/'
        stosb
        mov     rsi, r8
        mov     rcx, r9
        rep movsb
        mov     [rbp + NAT_END], rdi
        cmp     byte ptr [rbp + NAT_VERB], 's'
        je      start_gate

        # The plan into PLAN: open(…/delete.plan, O_RDONLY|O_CLOEXEC|O_NOFOLLOW).
        lea     rsi, [rip + delete_plan_name]
        mov     edx, 0xa0000
        call    open_in_folder
        test    eax, eax
        js      native_decline
        mov     edi, eax
        xor     r10d, r10d                      # bytes read
55:     lea     rsi, [rbp + NAT_PLAN + r10]
        mov     edx, NAT_PLAN_MAX
        sub     rdx, r10
        jz      56f                             # full: more than a plan holds
        xor     eax, eax                        # read(fd, …)
        syscall
        test    rax, rax
        js      56f
        jz      57f
        add     r10, rax
        jmp     55b
56:     mov     eax, 3                          # close(fd), and Deno's
        syscall
        jmp     native_decline
57:     mov     eax, 3                          # close(fd)
        syscall

        # The header, then every op checked before any runs: a letter of
        # GCPFD and an absolute path without "/.", each NUL-terminated.
        lea     rsi, [rbp + NAT_PLAN]
        lea     rdx, [rbp + NAT_PLAN + r10]     # rdx: the plan's end
        lea     rdi, [rip + delete_plan_header]
        mov     ecx, delete_plan_header_end - delete_plan_header
        cmp     r10, rcx
        jbe     native_decline                     # no op after the header
        cmp     byte ptr [rdx - 1], 0
        jne     native_decline
        repe cmpsb
        jne     native_decline
        mov     r8, rsi                         # r8: the first op
58:     cmp     rsi, rdx
        jae     61f
        lodsb
        cmp     al, 'G'
        je      59f
        cmp     al, 'C'
        je      59f
        cmp     al, 'P'
        je      59f
        cmp     al, 'F'
        je      59f
        cmp     al, 'D'
        jne     native_decline
59:     cmp     byte ptr [rsi], '/'
        jne     native_decline
60:     lodsb
        test    al, al
        jz      58b
        cmp     al, '/'
        jne     60b
        cmp     byte ptr [rsi], '.'
        je      native_decline
        jmp     60b

        # Run it. G: access(path, F_OK) says ENOENT, or the process is a
        # zombie (exited; its parent has not taken its status yet), as
        # processStart (host/processes.ts) counts one. C, D: rmdir, F:
        # unlink, each done or ENOENT. P: rmdir, whatever it says.
61:     mov     rbx, r8
62:     cmp     rbx, rdx
        jae     67f
        lea     rdi, [rbx + 1]
        movzx   r9d, byte ptr [rbx]
        cmp     r9d, 'G'
        jne     63f
        xor     esi, esi
        mov     eax, 21
        syscall
        cmp     rax, -2
        je      66f
        call    is_zombie
        test    eax, eax
        jz      native_decline                     # alive, or a recycled pid: Deno's (start times)
        jmp     66f
63:     mov     eax, 84                         # rmdir
        cmp     r9d, 'F'
        jne     64f
        mov     eax, 87                         # unlink
64:     syscall
        cmp     r9d, 'P'
        je      66f                             # in use (another container's) or gone
        test    rax, rax
        jz      66f
        cmp     rax, -2
        jne     native_decline
66:     inc     rbx                             # past the op's NUL
        cmp     byte ptr [rbx - 1], 0
        jne     66b
        jmp     62b
67:     xor     edi, edi                        # exit_group(0): deleted
        mov     eax, 231
        syscall
        hlt

        # `start`: what Deno's start does for a container without hooks,
        # call for call (commands/start_plan.ts), when create's start plan
        # says that is all its start is: the plan, exactly its header.
start_gate:
        lea     rsi, [rip + start_plan_name]    # open(plan, O_RDONLY|O_CLOEXEC|O_NOFOLLOW)
        mov     edx, 0xa0000
        call    open_in_folder
        test    eax, eax
        js      native_decline
        mov     edi, eax                        # one read: a regular file of 17 bytes
        lea     rsi, [rbp + NAT_PLAN]
        mov     edx, 64
        call    read_closing
        cmp     r10, start_plan_header_end - start_plan_header
        jne     native_decline
        lea     rsi, [rbp + NAT_PLAN]
        lea     rdi, [rip + start_plan_header]
        mov     ecx, start_plan_header_end - start_plan_header
        repe cmpsb
        jne     native_decline

        # The report FIFO, opened to read before the byte goes in (every
        # report after it lands here): open(…, O_RDONLY|O_NONBLOCK|O_CLOEXEC).
        lea     rsi, [rip + report_fifo_name]
        mov     edx, 0x80800
        call    open_in_folder
        test    eax, eax
        js      native_decline
        mov     r15d, eax                       # r15: the report FIFO

        # The gate: open(start.fifo, O_WRONLY|O_NONBLOCK|O_CLOEXEC) fails
        # when it is gone (started already) or no one reads it (the
        # container's process is gone: ENXIO); Deno's start says which.
        lea     rsi, [rip + start_fifo_name]
        mov     edx, 0x80801
        call    open_in_folder
        test    eax, eax
        js      90f
        mov     ebx, eax                        # rbx: the start FIFO
        # One byte, with SIGPIPE ignored meanwhile: a reader gone since the
        # open is EPIPE, then Deno's, not this process's death.
        # rt_sigaction(SIGPIPE, {SIG_IGN}, old at STAT + 32, 8)
        lea     rsi, [rbp + NAT_STAT]
        mov     qword ptr [rsi], 1
        mov     qword ptr [rsi + 8], 0
        mov     qword ptr [rsi + 16], 0
        mov     qword ptr [rsi + 24], 0
        lea     rdx, [rbp + NAT_STAT + 32]
        mov     edi, 13
        mov     r10d, 8
        mov     eax, 13
        syscall
        test    eax, eax
        jnz     89f
        mov     edi, ebx                        # write(start FIFO, "\0", 1)
        lea     rsi, [rip + nul_byte]
        mov     edx, 1
        mov     eax, 1
        syscall
        mov     r8, rax
        lea     rsi, [rbp + NAT_STAT + 32]      # rt_sigaction(SIGPIPE, old, NULL, 8)
        xor     edx, edx
        mov     edi, 13
        mov     r10d, 8
        mov     eax, 13
        syscall
        mov     edi, ebx                        # close(start FIFO)
        mov     eax, 3
        syscall
        cmp     r8, 1
        jne     90f                             # the byte did not go in: nothing happened

        # Started. The FIFO goes, and `started` is made: the record's
        # status and start time (readRecord). Their results are not
        # checked: the start has happened and cannot be undone, and both
        # are in the caller's own runtime folder, where the open above
        # has just succeeded (Deno's start would fail after the gate too).
        lea     rsi, [rip + start_fifo_name]
        call    in_folder
        mov     rdi, rax                        # unlink(start.fifo)
        mov     eax, 87
        syscall
        lea     rsi, [rip + started_name]       # open(started, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC|O_NOFOLLOW, 0600)
        mov     edx, 0xa0241
        call    open_in_folder
        test    eax, eax
        js      81f
        mov     edi, eax
        mov     eax, 3
        syscall

        # The reports until end-of-file, which comes when the command has
        # been exec'd (the FIFO's last writer is close-on-exec), for at
        # most EXEC_WAIT_MS (10 s, commands/start_plan.ts). r8: bytes read
        # into PLAN, r9: the deadline (CLOCK_MONOTONIC, ns).
81:     call    monotonic_ns
        mov     r9, 10000000000
        add     r9, rax
        xor     r8d, r8d
82:     call    monotonic_ns
        mov     rcx, r9
        sub     rcx, rax
        jle     87f                             # the wait is over
        lea     rax, [rcx + 999999]             # poll's ms, rounded up
        xor     edx, edx
        mov     ecx, 1000000
        div     rcx
        mov     edx, eax
        lea     rdi, [rbp + NAT_STAT]           # poll({report FIFO, POLLIN}, 1, ms)
        mov     dword ptr [rdi], r15d
        mov     dword ptr [rdi + 4], 1
        mov     esi, 1
        mov     eax, 7
        syscall
        cmp     rax, -4
        je      82b                             # EINTR
        test    rax, rax
        jle     87f                             # the wait is over (or poll failed)
        mov     edi, r15d                       # read(report FIFO, PLAN + r8, what is left)
        lea     rsi, [rbp + NAT_PLAN + r8]
        mov     edx, NAT_PLAN_MAX
        sub     rdx, r8
        jnz     83f
        lea     rsi, [rbp + NAT_STAT + 64]      # PLAN is full: the rest is read and dropped
        mov     edx, 64
83:     xor     eax, eax
        syscall
        test    rax, rax
        jz      86f                             # end-of-file: exec'd, or failed to be
        js      84f
        cmp     r8, NAT_PLAN_MAX
        je      82b
        add     r8, rax
        jmp     82b
84:     cmp     rax, -4                         # EINTR, EAGAIN: poll again
        je      82b
        cmp     rax, -11
        je      82b
        jmp     87f

        # All of it read: every whole word 0 means the command was exec'd.
86:     mov     rcx, r8
        and     rcx, -4
        lea     rsi, [rbp + NAT_PLAN]
88:     sub     rcx, 4
        js      91f
        cmp     dword ptr [rsi + rcx], 0
        je      88b

        # A failure, or no end within the wait: the reports go to
        # start.report, and Deno's start, with the same arguments, says
        # them in the log (takeStartReport).
87:     lea     rsi, [rip + start_report_name] # open(start.report, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC|O_NOFOLLOW, 0600)
        mov     edx, 0xa0241
        call    open_in_folder
        test    eax, eax
        js      90f
        mov     edi, eax                        # write(fd, PLAN, r8): a FIFO's few words, in one write
        lea     rsi, [rbp + NAT_PLAN]
        mov     rdx, r8
        mov     eax, 1
        syscall
        mov     eax, 3                          # close(fd)
        syscall
        jmp     90f

89:     mov     edi, ebx                        # close(start FIFO)
        mov     eax, 3
        syscall
90:     mov     edi, r15d                       # close(report FIFO), and Deno's
        mov     eax, 3
        syscall
        jmp     native_decline
91:     xor     edi, edi                        # exit_group(0): started
        mov     eax, 231
        syscall
        hlt

native_decline:
        add     rsp, NAT_FRAME
        pop     r15
        pop     rbp
        pop     rbx
        ret

        # The value of the option whose name ends at rax, in the argument
        # at rbx: after "=", or the next argument. rbx moves past it; rax
        # is 0 when there is none (or the name goes on: "--rootless").
option_value:
        cmp     byte ptr [rax], '='
        je      68f
        cmp     byte ptr [rax], 0
        jne     69f
        mov     rax, [rbx + 8]
        add     rbx, 16
        ret
68:     inc     rax
        add     rbx, 8
        ret
69:     xor     eax, eax
        ret

        # eax = 1 if the process whose /proc folder is at rdi is a zombie
        # (the state after the last ")" of its stat file is Z) or gone,
        # else 0. Keeps rdx (the plan's end) and rbx.
is_zombie:
        push    rdx
        mov     rsi, rdi
        lea     rdi, [rbp + NAT_LINK]
        lea     rcx, [rbp + NAT_LINK + 48]
71:     lodsb
        test    al, al
        jz      72f
        stosb
        cmp     rdi, rcx
        jb      71b
        jmp     76f                             # too long for /proc/<pid>
72:     lea     rsi, [rip + slash_stat]
73:     lodsb
        stosb
        test    al, al
        jnz     73b
        lea     rdi, [rbp + NAT_LINK]           # open(…/stat, O_RDONLY|O_CLOEXEC)
        mov     esi, 0x80000
        mov     eax, 2
        syscall
        cmp     rax, -2
        je      77f                             # gone meanwhile
        test    eax, eax
        js      76f
        mov     edi, eax                        # one read: a stat file is a few hundred bytes
        lea     rsi, [rbp + NAT_STAT]
        mov     edx, 1024
        call    read_closing
        test    r10, r10
        jle     76f
        lea     rcx, [rbp + NAT_STAT]
        lea     rsi, [rcx + r10]                # the end
74:     dec     rsi
        cmp     rsi, rcx
        jb      76f
        cmp     byte ptr [rsi], ')'
        jne     74b
        lea     rax, [rsi + 2]
        lea     rdx, [rcx + r10]
        cmp     rax, rdx
        jae     76f
        cmp     byte ptr [rax], 'Z'
        je      77f
76:     xor     eax, eax
        pop     rdx
        ret
77:     mov     eax, 1
        pop     rdx
        ret

        # PATH = "<folder>/<id>" (up to NAT_END) + the suffix at rsi, NUL
        # included; rax = PATH.
in_folder:
        mov     rdi, [rbp + NAT_END]
92:     lodsb
        stosb
        test    al, al
        jnz     92b
        lea     rax, [rbp + NAT_PATH]
        ret

        # open(PATH = "<folder>/<id>" + the suffix at rsi, the flags in edx,
        # 0600): the mode counts only with O_CREAT. rax: the descriptor or
        # -errno.
open_in_folder:
        call    in_folder
        mov     rdi, rax
        mov     esi, edx
        mov     edx, 0x180
        mov     eax, 2
        syscall
        ret

        # One read(2) of up to edx bytes from fd edi into rsi, then
        # close(fd): r10 = what the read returned (bytes, or -errno).
read_closing:
        xor     eax, eax
        syscall
        mov     r10, rax
        mov     eax, 3                          # close(fd)
        syscall
        ret

        # rax = CLOCK_MONOTONIC in ns, through STAT + 128. Keeps r8, r9.
monotonic_ns:
        mov     edi, 1                          # clock_gettime(CLOCK_MONOTONIC, STAT + 128)
        lea     rsi, [rbp + NAT_STAT + 128]
        mov     eax, 228
        syscall
        imul    rax, qword ptr [rbp + NAT_STAT + 128], 1000000000
        add     rax, [rbp + NAT_STAT + 136]
        ret

        # value_of, but an empty value counts as unset (rax 0), as in
        # paths.ts and sh's -z.
set_value_of:
        call    value_of
        test    rax, rax
        jz      78f
        cmp     byte ptr [rax], 0
        jne     78f
        xor     eax, eax
78:     ret

        # eax = 1 if the string at rsi is exactly the one at rdi, else 0.
is_word:
        call    value_of
        test    rax, rax
        jz      70f
        cmp     byte ptr [rax], 0
        mov     eax, 0
        jne     70f
        mov     eax, 1
70:     ret

        # PATH = the checkout (SELF + 9, r15 bytes) + the suffix at rsi,
        # NUL included. Returns PATH's address in rax.
make_path:
        lea     rdi, [rbp + PATH]
        push    rsi
        lea     rsi, [rbp + SELF + 9]
        mov     rcx, r15
        rep movsb
        pop     rsi
16:     lodsb
        stosb
        test    al, al
        jnz     16b
        lea     rax, [rbp + PATH]
        ret

        # rax = the value of the variable at rsi if its name is the
        # "NAME=" at rdi, else 0. Compares byte by byte, so it never reads
        # past the variable's NUL.
value_of:
        mov     rax, rsi
17:     mov     r11b, [rdi]
        test    r11b, r11b
        jz      18f
        cmp     r11b, [rax]
        jne     19f
        inc     rax
        inc     rdi
        jmp     17b
18:     ret
19:     xor     eax, eax
        ret

gcr_self_is:
        .asciz  "GCR_SELF="
gcr_run_is:
        .asciz  "GCR_RUN="
gcr_state_is:
        .asciz  "GCR_STATE="
user_root_is:
        .asciz  "USER=root"
opt_root:
        .asciz  "--root"
opt_log_format:
        .asciz  "--log-format"
opt_log:
        .asciz  "--log"
opt_systemd_cgroup:
        .asciz  "--systemd-cgroup"
verb_delete:
        .asciz  "delete"
verb_start:
        .asciz  "start"
opt_force:
        .asciz  "--force"
opt_f:
        .asciz  "-f"
proc_self_ns_user:
        .asciz  "/proc/self/ns/user"
initial_user_ns:
        .ascii  "user:[4026531837]"             # PROC_USER_INIT_INO
initial_user_ns_end:
run_gcr:
        .asciz  "/run/gcr"
slash_gcr:
        .asciz  "/gcr"
delete_plan_name:
        .asciz  "/delete.plan"
start_plan_name:
        .asciz  "/start.plan"
start_plan_header:
        .asciz  "gcr-start-plan 1"
start_plan_header_end:
report_fifo_name:
        .asciz  "/report.fifo"
start_fifo_name:
        .asciz  "/start.fifo"
started_name:
        .asciz  "/started"
start_report_name:
        .asciz  "/start.report"
nul_byte:
        .byte   0
slash_stat:
        .asciz  "/stat"
delete_plan_header:
        .asciz  "gcr-delete-plan 1"
delete_plan_header_end:
home_is:
        .asciz  "HOME="
deno_dir_is:
        .asciz  "DENO_DIR="
xdg_cache_home_is:
        .asciz  "XDG_CACHE_HOME="
xdg_runtime_dir_is:
        .asciz  "XDG_RUNTIME_DIR="
gcr_no_bundle_is:
        .asciz  "GCR_NO_BUNDLE="
proc_self_exe:
        .asciz  "/proc/self/exe"
launch_name:
        .asciz  "/.cache/bundle/launch"
stamp_name:
        .asciz  "/.cache/bundle/stamp"
script_name:
        .asciz  "/launch/gcr.sh"
sh_name:
        .asciz  "sh"
bin_sh:
        .asciz  "/bin/sh"
no_self_message:
        .ascii  "gcr: cannot find itself: readlink /proc/self/exe failed or its path is 4000 bytes or longer\n"
no_self_message_end:
too_many_message:
        .ascii  "gcr: more than 131072 arguments and environment variables\n"
too_many_message_end:
no_sh_message:
        .ascii  "gcr: cannot run /bin/sh launch/gcr.sh\n"
no_sh_message_end:
