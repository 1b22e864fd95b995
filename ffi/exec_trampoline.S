# gcr-exec: the last program a container's process runs before its command.
#
# The chain runs in a clone of gcr's Deno, so until it execs, the process's
# /proc/<pid>/exe is the host's deno binary. Exec'ing the command from there
# would let a command of /proc/self/exe (or a script whose interpreter is
# /proc/self/exe) run the host's deno with the image's own ld.so: the
# attacker's code, holding the host binary open (CVE-2019-5736). So the
# chain execveat()s this program instead, from a sealed memfd, and this
# program execs the command: from its first instruction the process's exe
# is a sealed copy of these few hundred bytes, never the host's binary.
#
# It is started as  gcr-exec STATUS FILE ARGV0 ARGV1 …  with the
# container's environment, and does what execvp(3) does for FILE, with the
# command's own argv: a name with a slash is run as it is, any other is
# looked up in each folder of the environment's PATH (default
# "/bin:/usr/bin", as glibc's), an empty folder meaning the current one.
# Errors as execvp treats them: EACCES is remembered and the search goes
# on; ENOENT, ENOTDIR, ENODEV, ESTALE and ETIMEDOUT go on; anything else
# stops it. Unlike glibc's execvp it does not retry an ENOEXEC file with
# /bin/sh: runc does not either, and Docker and podman users expect "exec
# format error".
#
# STATUS is the chain's status pipe. It is made close-on-exec first, so a
# successful exec closes it and gcr reads end-of-file; a failed one is
# written to it as a negative errno (the chain writes positive ones, so gcr
# can tell the command's failure from the trampoline's), and the program
# exits 127. Run any other way (argc < 3, a STATUS that is not a number: a
# command of /proc/self/exe runs it so), it says so on stderr and exits 127.
#
# No libc, no data section, no relocations: position-independent x86_64
# code that ffi/native_program.ts wraps in a 176-byte ELF header.
# Rebuild its bytes with `deno task native` after editing this file;
# tests/ffi/exec_trampoline_test.ts checks that they match.

        .intel_syntax noprefix
        .text
        .globl  _start
_start:
        # At entry rsp points at argc, then argv[0..argc-1], NULL, envp…, NULL.
        mov     rbx, [rsp]                      # argc
        cmp     rbx, 3
        jb      misused
        lea     r15, [rsp + rbx*8 + 16]         # envp
        mov     r13, [rsp + 24]                 # argv[2]: FILE
        lea     r14, [rsp + 32]                 # &argv[3]: the command's argv

        # argv[1]: the status descriptor, in decimal.
        mov     rsi, [rsp + 16]
        xor     r12d, r12d
1:      movzx   eax, byte ptr [rsi]
        inc     rsi
        test    eax, eax
        jz      2f
        sub     eax, '0'
        cmp     eax, 9
        ja      misused
        imul    r12d, r12d, 10
        add     r12d, eax
        jmp     1b

2:      # fcntl(STATUS, F_SETFD, FD_CLOEXEC)
        mov     eax, 72
        mov     edi, r12d
        mov     esi, 2
        mov     edx, 1
        syscall

        sub     rsp, 4096                       # room for "folder/FILE"

        # FILE's length into r10; a slash anywhere means "run it as it is".
        xor     r10d, r10d
3:      movzx   eax, byte ptr [r13 + r10]
        test    eax, eax
        jz      4f
        inc     r10
        cmp     eax, '/'
        jne     3b
        mov     rdi, r13                        # execve(FILE, argv, envp)
        mov     rsi, r14
        mov     rdx, r15
        mov     eax, 59
        syscall
        jmp     report
4:      mov     eax, -2                         # an empty FILE is not found (ENOENT)
        test    r10, r10
        jz      report

        # PATH's value, from the first "PATH=" in envp; glibc's default without one.
        lea     rbp, [rip + default_path]
        mov     rdx, r15
5:      mov     rsi, [rdx]
        test    rsi, rsi
        jz      6f
        add     rdx, 8
        cmp     dword ptr [rsi], 0x48544150     # "PATH"
        jne     5b
        cmp     byte ptr [rsi + 4], '='
        jne     5b
        lea     rbp, [rsi + 5]

6:      mov     r8d, -2                         # the error to report if nothing runs: ENOENT
        xor     r9d, r9d                        # 1 once some folder said EACCES
next_folder:
        # rbx: this folder's length, up to ':' or the end of PATH.
        xor     ebx, ebx
7:      movzx   eax, byte ptr [rbp + rbx]
        test    eax, eax
        jz      8f
        cmp     eax, ':'
        je      8f
        inc     rbx
        jmp     7b
8:      lea     rax, [rbx + r10 + 2]
        cmp     rax, 4096
        ja      after_folder                    # longer than PATH_MAX: as if not found there
        mov     rdi, rsp                        # the buffer: folder, '/', FILE, NUL
        mov     rsi, rbp
        mov     rcx, rbx
        rep movsb
        test    rbx, rbx
        jz      9f                              # an empty folder is the current one: FILE alone
        mov     byte ptr [rdi], '/'
        inc     rdi
9:      mov     rsi, r13
        lea     rcx, [r10 + 1]
        rep movsb
        mov     rdi, rsp                        # execve(buffer, argv, envp)
        mov     rsi, r14
        mov     rdx, r15
        mov     eax, 59
        syscall
        cmp     eax, -13                        # EACCES: remember it, go on
        jne     10f
        mov     r9d, 1
        jmp     after_folder
10:     cmp     eax, -2                         # ENOENT
        je      11f
        cmp     eax, -20                        # ENOTDIR
        je      11f
        cmp     eax, -19                        # ENODEV
        je      11f
        cmp     eax, -116                       # ESTALE
        je      11f
        cmp     eax, -110                       # ETIMEDOUT
        je      11f
        jmp     report                          # anything else stops the search
11:     mov     r8d, eax
after_folder:
        cmp     byte ptr [rbp + rbx], 0
        je      12f
        lea     rbp, [rbp + rbx + 1]
        jmp     next_folder
12:     mov     eax, r8d
        test    r9d, r9d
        jz      report
        mov     eax, -13

report:
        # write(STATUS, &-errno, 4), then exit_group(127).
        mov     [rsp], eax
        mov     edi, r12d
        mov     rsi, rsp
        mov     edx, 4
        mov     eax, 1
        syscall
exit_127:
        mov     edi, 127
        mov     eax, 231
        syscall
        hlt

misused:
        # write(2, message, length), then exit_group(127).
        mov     edi, 2
        lea     rsi, [rip + message]
        mov     edx, message_end - message
        mov     eax, 1
        syscall
        jmp     exit_127

default_path:
        .asciz  "/bin:/usr/bin"
message:
        .ascii  "gcr-exec: gcr's exec trampoline runs only as gcr starts a command\n"
message_end:
