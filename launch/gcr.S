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
# to ./gcr by `deno task native`; tests/ffi/native_programs_test.ts checks
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
