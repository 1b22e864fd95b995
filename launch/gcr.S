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
#   0. deletes a stopped container itself when an engine asks (`delete`),
#      by the plan create left beside its record (try_delete, below), and
#      exits: no Deno at all for that verb, which engines call for every
#      container;
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
        call    try_delete                      # returns only when Deno is needed
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

        # `delete` without Deno: an engine deletes every container once it
        # has stopped, and a Deno start-up was most of that delete's time
        # (bench/README.md). try_delete runs the container's delete plan,
        # which create wrote beside its record (commands/delete_plan.ts has
        # the format and why each op is safe to repeat), and exits 0. It
        # returns, for Deno's delete, on anything else: other options, an id
        # gcr would refuse, a runtime folder it would find otherwise than
        # here, no plan or one it cannot read, a plan that does not cover
        # what it finds (the init's pid exists, a process is left in the
        # cgroup, a file it does not list). Every op is one system call
        # that may be repeated, so what a stopped plan leaves, Deno's delete
        # finishes. The arguments it takes (engines' delete):
        #   [--root DIR | --log FILE | --log-format F | --systemd-cgroup]…
        #   delete [--force | -f] ID
        # (--root=DIR and the like too). In: r12 argc, r13 argv, r14 envp,
        # which it keeps, as it keeps rbx, rbp and r15.
        .set    DEL_PATH, 0
        .set    DEL_ROOT_MAX, 4000
        .set    DEL_LINK, 4352
        .set    DEL_STAT, DEL_LINK + 64
        .set    DEL_PLAN, DEL_STAT + 1024
        .set    DEL_PLAN_MAX, 16384
        .set    DEL_FRAME, DEL_PLAN + DEL_PLAN_MAX + 16

try_delete:
        push    rbx
        push    rbp
        push    r15
        sub     rsp, DEL_FRAME
        mov     rbp, rsp
        xor     r15d, r15d                      # r15: the runtime folder, once known
        lea     rbx, [r13 + 8]                  # rbx: the argument looked at
30:     mov     rsi, [rbx]
        test    rsi, rsi
        jz      del_decline
        cmp     byte ptr [rsi], '-'
        jne     33f                             # not an option: the verb
        lea     rdi, [rip + opt_root]
        call    value_of
        test    rax, rax
        jz      31f
        call    option_value
        test    rax, rax
        jz      del_decline
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
        jz      del_decline
        jmp     30b
34:     lea     rdi, [rip + opt_systemd_cgroup] # only create makes cgroups
        call    is_word
        test    eax, eax
        jz      del_decline
        add     rbx, 8
        jmp     30b

33:     lea     rdi, [rip + verb_delete]
        call    is_word
        test    eax, eax
        jz      del_decline
        add     rbx, 8
        mov     rsi, [rbx]
        test    rsi, rsi
        jz      del_decline
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
        jz      del_decline
36:     cmp     qword ptr [rbx + 8], 0          # the id, and nothing after it
        jne     del_decline

        # The id, as CONTAINER_ID (state/paths.ts) has it, and so never a
        # path: [A-Za-z0-9][A-Za-z0-9_.+-]{0,127}. r8: the id, r9: its length.
        mov     r8, rsi
        xor     ecx, ecx
37:     movzx   eax, byte ptr [rsi + rcx]
        test    al, al
        jz      39f
        cmp     ecx, 128
        jae     del_decline
        mov     edx, eax
        or      edx, 0x20                       # A-Z as a-z
        sub     edx, 'a'
        cmp     edx, 25
        jbe     38f
        lea     edx, [rax - '0']
        cmp     edx, 9
        jbe     38f
        test    ecx, ecx
        jz      del_decline                     # the first is a letter or a digit
        cmp     al, '_'
        je      38f
        cmp     al, '.'
        je      38f
        cmp     al, '+'
        je      38f
        cmp     al, '-'
        jne     del_decline
38:     inc     ecx
        jmp     37b
39:     test    ecx, ecx
        jz      del_decline
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
        jnz     del_decline                     # $GCR_STATE/run (tests' folders): Deno's
        mov     r15, rdx
        mov     eax, 102                        # getuid()
        syscall
        test    eax, eax
        jnz     45f
        lea     rdi, [rip + proc_self_ns_user]  # readlink("/proc/self/ns/user", LINK, 64)
        lea     rsi, [rbp + DEL_LINK]
        mov     edx, 64
        mov     eax, 89
        syscall
        test    rax, rax
        js      del_decline                     # no such link: paths.ts reads uid_map, Deno's
        cmp     rax, initial_user_ns_end - initial_user_ns
        jne     47f
        lea     rsi, [rbp + DEL_LINK]
        lea     rdi, [rip + initial_user_ns]
        mov     ecx, initial_user_ns_end - initial_user_ns
        repe cmpsb
        je      48f
47:     test    ebx, 1
        jz      45f
48:     lea     r15, [rip + run_gcr]
        jmp     46f
45:     test    r15, r15                        # $XDG_RUNTIME_DIR/gcr
        jz      del_decline                     # /tmp/gcr-<uid>: Deno's
        lea     r10, [rip + slash_gcr]

        # PATH = folder + suffix + "/" + id + "/delete.plan": the folder
        # absolute and without "/." (the plan's own rule for its paths).
46:     cmp     byte ptr [r15], '/'
        jne     del_decline
        lea     rdi, [rbp + DEL_PATH]
        lea     rdx, [rbp + DEL_PATH + DEL_ROOT_MAX]
        mov     rsi, r15
49:     lodsb
        test    al, al
        jz      50f
        cmp     al, '.'
        jne     51f
        cmp     byte ptr [rdi - 1], '/'
        je      del_decline
51:     stosb
        cmp     rdi, rdx
        jae     del_decline
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
        lea     rsi, [rip + delete_plan_name]
54:     lodsb
        stosb
        test    al, al
        jnz     54b

        # The plan into PLAN: open(PATH, O_RDONLY|O_CLOEXEC|O_NOFOLLOW).
        lea     rdi, [rbp + DEL_PATH]
        mov     esi, 0xa0000
        xor     edx, edx
        mov     eax, 2
        syscall
        test    eax, eax
        js      del_decline
        mov     edi, eax
        xor     r10d, r10d                      # bytes read
55:     lea     rsi, [rbp + DEL_PLAN + r10]
        mov     edx, DEL_PLAN_MAX
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
        jmp     del_decline
57:     mov     eax, 3                          # close(fd)
        syscall

        # The header, then every op checked before any runs: a letter of
        # GCPFD and an absolute path without "/.", each NUL-terminated.
        lea     rsi, [rbp + DEL_PLAN]
        lea     rdx, [rbp + DEL_PLAN + r10]     # rdx: the plan's end
        lea     rdi, [rip + delete_plan_header]
        mov     ecx, delete_plan_header_end - delete_plan_header
        cmp     r10, rcx
        jbe     del_decline                     # no op after the header
        cmp     byte ptr [rdx - 1], 0
        jne     del_decline
        repe cmpsb
        jne     del_decline
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
        jne     del_decline
59:     cmp     byte ptr [rsi], '/'
        jne     del_decline
60:     lodsb
        test    al, al
        jz      58b
        cmp     al, '/'
        jne     60b
        cmp     byte ptr [rsi], '.'
        je      del_decline
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
        jz      del_decline                     # alive, or a recycled pid: Deno's (start times)
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
        jne     del_decline
66:     inc     rbx                             # past the op's NUL
        cmp     byte ptr [rbx - 1], 0
        jne     66b
        jmp     62b
67:     xor     edi, edi                        # exit_group(0): deleted
        mov     eax, 231
        syscall
        hlt

del_decline:
        add     rsp, DEL_FRAME
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
        lea     rdi, [rbp + DEL_LINK]
        lea     rcx, [rbp + DEL_LINK + 48]
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
        lea     rdi, [rbp + DEL_LINK]           # open(…/stat, O_RDONLY|O_CLOEXEC)
        mov     esi, 0x80000
        mov     eax, 2
        syscall
        cmp     rax, -2
        je      77f                             # gone meanwhile
        test    eax, eax
        js      76f
        mov     edi, eax                        # one read: a stat file is a few hundred bytes
        lea     rsi, [rbp + DEL_STAT]
        mov     edx, 1024
        xor     eax, eax
        syscall
        mov     r10, rax
        mov     eax, 3                          # close(fd)
        syscall
        test    r10, r10
        jle     76f
        lea     rcx, [rbp + DEL_STAT]
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
